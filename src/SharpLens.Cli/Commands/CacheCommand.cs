using System.CommandLine;
using SharpLens.Interop;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens cache`: chosen activations of one forward pass, one .npz array per hook name.</summary>
public static class CacheCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var prompt = new PromptArguments();
        var hooks = new Option<string>("--hooks")
        {
            Description = "Hook names, comma-separated, exactly as TransformerLens names them, e.g. blocks.0.attn.hook_pattern,blocks.1.hook_resid_post.",
            Required = true,
        };
        var outOption = new Option<string>("--out") { Description = "Where to write the activations: .npz, one float32 array per hook name, batch dimension dropped.", Required = true };
        var command = new Command("cache",
            "Run the model on one prompt and write the activations at the named hooks to a NumPy .npz file (numpy.load reads it).\n\n" +
            "Example: sharplens cache --model ./gpt2 --prompt \"Hello world\" --hooks blocks.0.attn.hook_pattern,blocks.5.hook_resid_post --out acts.npz");
        model.AddTo(command);
        prompt.AddTo(command);
        command.Options.Add(hooks);
        command.Options.Add(outOption);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            var names = parse.GetValue(hooks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToList();
            if (names.Count == 0) throw new CliArgumentException("--hooks is empty: name at least one hook, e.g. blocks.0.hook_resid_post.");
            using var loaded = model.LoadAny(parse);
            // An unknown name fails here, with the closest names, before any work.
            foreach (var name in names)
                if (loaded.Encoder is { } e) e.GetHookPoint(name); else loaded.Decoder!.GetHookPoint(name);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var wanted = names.ToHashSet();
            var (logits, cache) = loaded.Encoder is { } encoder
                ? encoder.RunWithCache(prompt.Read(parse, encoder), wanted.Contains)
                : loaded.Decoder!.RunWithCache(prompt.Read(parse, loaded.Decoder!), names); // tokens [1, pos]
            using (cache)
            {
                var arrays = names.Select(n => KeyValuePair.Create(n, cache[n][0].to(ScalarType.Float32))).ToList(); // batch dimension dropped
                string path = parse.GetValue(outOption)!;
                NumpyFiles.SaveNpz(path, arrays);
                foreach (var (n, a) in arrays) Console.WriteLine($"  {n,-40} {ShapeText.Of(a.shape)}");
                Console.WriteLine($"Wrote {arrays.Count} arrays to {Path.GetFullPath(path)}");
            }
            logits.Dispose();
            return 0;
        }));
        return command;
    }
}
