using System.CommandLine;
using SharpLens.Diffing;
using SharpLens.Interop;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens diff encode`: a crosscoder's code (and reconstruction) of paired activations stored as .npy, so other tools can check the maths.</summary>
public static class DiffEncodeCommand
{
    public static Command Create()
    {
        var crosscoder = new Option<string>("--crosscoder") { Description = "A crosscoder: a dictionary_learning folder (config.json + model.safetensors), a Kissane folder (cfg.json + cc_weights.pt), or either weights file.", Required = true };
        var input = new Option<string>("--input") { Description = "Activations X: a .npy of float32 [n, n_models, d_in].", Required = true };
        var output = new Option<string>("--out") { Description = "Where to write the code f: .npy float32 [n, dict_size] (dictionary_learning's encode: before code normalisation).", Required = true };
        var recon = new Option<string?>("--reconstruction") { Description = "Also write the reconstruction: .npy float32 [n, n_models, d_in]." };
        var command = new Command("encode",
            "Encode paired activations with a crosscoder, as dictionary_learning does: normalise, f = ReLU(Σ_m x^m W_enc^m + b_enc), " +
            "BatchTopK keeps f_i where f_i · c_i > threshold; the reconstruction is f W_dec^m + b_dec^m, denormalised.\n\n" +
            "Example: sharplens diff encode --crosscoder cc-trigger --input X.npy --out F.npy --reconstruction R.npy");
        foreach (var option in new Option[] { crosscoder, input, output, recon }) command.Options.Add(option);
        command.SetAction(parse => CommandErrors.Run(parse, () => Run(parse.GetValue(crosscoder)!, parse.GetValue(input)!, parse.GetValue(output)!, parse.GetValue(recon))));
        return command;
    }

    public static int Run(string crosscoderPath, string inputPath, string outPath, string? reconstructionPath)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        using var cc = CrossCoderFiles.Load(crosscoderPath);
        var x = NumpyFiles.LoadNpy(inputPath);
        if (x.dim() != 3 || x.shape[1] != cc.NModels || x.shape[2] != cc.DIn)
            throw new CliArgumentException($"--input {inputPath} has shape {ShapeText.Of(x.shape)}; the crosscoder {crosscoderPath} reads [n, n_models = {cc.NModels}, d_in = {cc.DIn}].");
        var f = cc.Encode(x.to(ScalarType.Float32)); // [n, F]
        NumpyFiles.SaveNpy(outPath, f);
        if (reconstructionPath is not null) NumpyFiles.SaveNpy(reconstructionPath, cc.Decode(f)); // [n, M, d]
        double l0 = f.gt(0).sum(-1).to(ScalarType.Float64).mean().item<double>();
        Console.WriteLine($"{x.shape[0]} inputs → {cc.DLatent} latents ({cc.Config.Architecture}), mean L0 {l0:F2}; wrote {outPath}" + (reconstructionPath is null ? "" : $" and {reconstructionPath}"));
        return 0;
    }
}
