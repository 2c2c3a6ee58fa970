using System.CommandLine;
using SharpLens.Interop;
using SharpLens.IO;
using SharpLens.Saes;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens sae encode`: feature activations (and reconstructions) of activations stored as .npy.</summary>
public static class SaeEncodeCommand
{
    public static Command Create()
    {
        var sae = new Option<string>("--sae") { Description = "An SAELens folder (cfg.json + sae_weights.safetensors) or a Gemma Scope params.npz.", Required = true };
        var input = new Option<string>("--input") { Description = "Activations X: a .npy of float32 [n, d_in].", Required = true };
        var output = new Option<string>("--out") { Description = "Where to write the feature activations: .npy float32 [n, d_sae].", Required = true };
        var recon = new Option<string?>("--reconstruction") { Description = "Also write the SAE's output: .npy float32 [n, d_in] ([n, d_out] for a transcoder)." };
        var command = new Command("encode",
            "Encode activations with an SAE: f = σ(x W_enc + b_enc) as the SAE's architecture defines σ (standard, topk, " +
            "jumprelu, gated, transcoder), after its input normalization and b_dec subtraction.\n\n" +
            "Example: sharplens sae encode --sae gpt2-small-res-jb/blocks.8.hook_resid_pre --input X.npy --out features.npy");
        foreach (var option in new Option[] { sae, input, output, recon }) command.Options.Add(option);
        command.SetAction(parse => CommandErrors.Run(parse, () => Run(parse.GetValue(sae)!, parse.GetValue(input)!, parse.GetValue(output)!, parse.GetValue(recon))));
        return command;
    }

    public static int Run(string saePath, string inputPath, string outPath, string? reconstructionPath)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        using var sae = SaeFiles.Load(saePath);
        var x = NumpyFiles.LoadNpy(inputPath);
        if (x.dim() != 2 || x.shape[1] != sae.Config.DIn)
            throw new SharpLensArgumentException("--input", $"--input {inputPath} has shape {ShapeText.Of(x.shape)}; this SAE reads [n, d_in = {sae.Config.DIn}].");
        var features = sae.Encode(x).to(ScalarType.Float32); // [n, d_sae]
        // Both outputs or neither: each is staged under a temporary name and renamed only when both are written.
        using (var outputs = AtomicFile.Together())
        {
            outputs.Stage(outPath, stream => NumpyFiles.WriteNpy(stream, features));
            if (reconstructionPath is not null)
                outputs.Stage(reconstructionPath, stream => NumpyFiles.WriteNpy(stream, sae.Forward(x).to(ScalarType.Float32))); // [n, d_out]
            outputs.Commit();
        }
        double l0 = features.gt(0).sum(-1).to(ScalarType.Float64).mean().item<double>();
        Console.WriteLine($"{x.shape[0]} inputs → {sae.Config.DSae} features ({sae.Config.Architecture}), mean L0 {l0:F2}; wrote {outPath}" +
                          (reconstructionPath is null ? "" : $" and {reconstructionPath}"));
        return 0;
    }
}
