using System.CommandLine;
using System.Globalization;
using SharpLens.Diffing;
using TorchSharp;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens diff activations`: the activation difference lens (mean fine-tune − base difference per position, its readouts, steering).</summary>
public static class DiffActivationsCommand
{
    const string IdentityPrompt = "man -> man\n1135 -> 1135\nhello -> hello\n?";

    public static Command Create()
    {
        var args = new DiffArguments();
        var hook = new Option<string?>("--hook") { Description = "The hook to read (default: the middle layer's blocks.{n/2}.hook_resid_pre, the ADL's relative layer 0.5)." };
        var positions = new Option<int>("--positions") { Description = "Positions per context whose mean difference is kept (position 0 is BOS).", DefaultValueFactory = _ => 8 };
        var samples = new Option<int>("--samples") { Description = "Contexts averaged over.", DefaultValueFactory = _ => 10_000 };
        var prompt = new Option<string?>("--patchscope-prompt") { Description = $"Identity prompt of the patchscope (text models; default \"{IdentityPrompt.Replace("\n", "\\n")}\")." };
        var strengths = new Option<string>("--steer") { Description = "Steering strengths, × the fine-tune's mean activation norm, comma-separated.", DefaultValueFactory = _ => "0.5,1,2" };
        var steerPrompt = new Option<string?>("--steer-prompt") { Description = "Text the steered base continues (text models; default: the first held-out context's opening)." };
        var outFolder = new Option<string>("--out") { Description = "The folder to write: adl.npz, adl.json, report.html.", Required = true };
        var command = new Command("activations",
            "The activation difference lens: the mean of h_finetuned − h_base per position over the text at a middle layer, read with the " +
            "fine-tune's logit lens and a patchscope on the base, and added to the base (norm-matched steering).\n\n" +
            "Example: sharplens diff activations --base trigger-base --finetuned trigger-finetuned --hook blocks.1.hook_resid_post --out adl-trigger");
        args.AddTo(command);
        foreach (var option in new Option[] { hook, positions, samples, prompt, strengths, steerPrompt, outFolder }) command.Options.Add(option);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            using var subjects = args.Load(parse);
            int contextSize = parse.GetValue(args.ContextSize) ?? subjects.DefaultContextSize;
            int p = parse.GetValue(positions);
            if (p < 1 || p > contextSize) throw new CliArgumentException($"--positions must be between 1 and the context size ({contextSize}).");
            if (parse.GetValue(samples) < 1) throw new CliArgumentException("--samples must be positive.");
            string hookName = parse.GetValue(hook) ?? $"blocks.{subjects.Base.Config.NLayers / 2}.hook_resid_pre";
            var steer = parse.GetValue(strengths)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s =>
                double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : throw new CliArgumentException($"--steer: '{s}' is not a number.")).ToList();
            long seed = parse.GetValue(args.Seed);
            var data = args.Data(parse);
            var heldOut = subjects.Contexts(data, contextSize, heldOut: true, seed).Take(32).ToArray();
            if (heldOut.Length == 0) throw new CliArgumentException("The text gave no held-out context; give more text or a smaller --context-size.");
            using var steeringContexts = torch.tensor(heldOut.SelectMany(r => r).ToArray(), [heldOut.Length, contextSize]); // [32, pos]
            long[]? Encode(string text) => [.. subjects.Base.ToTokens(text, prependBos: subjects.Base.Config.BosTokenId is not null || TryBos(subjects)).data<long>().ToArray()];
            var options = new ActivationDiffOptions
            {
                Hook = hookName, Positions = p, MaxSamples = parse.GetValue(samples), SteeringStrengths = steer, ModelNames = subjects.Names,
                PatchscopePrompt = subjects.ReadsText ? Encode(parse.GetValue(prompt) ?? IdentityPrompt) : null,
                SteeringPrompt = subjects.ReadsText ? (parse.GetValue(steerPrompt) is { } sp ? Encode(sp) : heldOut[0][..Math.Min(8, heldOut[0].Length)]) : null,
            };
            var record = ActivationDiff.Run(subjects.Base, subjects.Finetuned, subjects.Contexts(data, contextSize, heldOut: false, seed), steeringContexts, options,
                parse.GetValue(outFolder)!, subjects.TokenText, subjects.ReadsText ? ids => subjects.Base.Tokenizer.Decode(ids) : null);
            Console.WriteLine($"Mean difference over {record.Samples:N0} contexts at {record.Hook} (fine-tune − base):");
            foreach (var r in record.Readouts)
                Console.WriteLine($"  position {r.Position}: ‖δ‖ {r.Norm:0.###}; logit lens: {string.Join(" ", r.LogitLens.Take(10).Select(t => t.Text.Replace("\n", "\\n")))}");
            Console.WriteLine($"Wrote {Path.GetFullPath(parse.GetValue(outFolder)!)} (adl.npz, adl.json, report.html)");
            return 0;
        }));
        return command;
    }

    static bool TryBos(DiffSubjects subjects)
    {
        try { return subjects.Base.Tokenizer.BosTokenId is not null; }
        catch (Models.MissingTokenizerException) { return false; }
    }
}
