using System.CommandLine;
using SharpLens.Saes;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens sae eval`: measure a saved SAE on held-out contexts of the model it reads.</summary>
public static class SaeEvalCommand
{
    public static Command Create()
    {
        var args = new SaeArguments();
        var saeOption = new Option<string>("--sae") { Description = "An SAELens folder or Gemma Scope params.npz.", Required = true };
        var hook = new Option<string?>("--hook") { Description = "The hook the SAE reads (default: its cfg.json metadata.hook_name)." };
        var tokens = new Option<long>("--tokens") { Description = "Held-out tokens to evaluate on.", DefaultValueFactory = _ => 100_000 };
        var outFolder = new Option<string?>("--out") { Description = "Where to write eval.json and density.png (default: the SAE's folder)." };
        var command = new Command("eval",
            "Evaluate an SAE on held-out contexts (every 20th context of a corpus; fresh sequences for an organism): L0, MSE, " +
            "explained variance, dead and dense features, the feature-density histogram, CE loss recovered (decoders), and for the " +
            "latent organism the feature that best tracks its planted latent.\n\n" +
            "Example: sharplens sae eval --model all-MiniLM-L6-v2 --sae sae-minilm --corpus brown");
        args.AddTo(command);
        foreach (var option in new Option[] { saeOption, hook, tokens, outFolder }) command.Options.Add(option);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            string saePath = parse.GetValue(saeOption)!;
            using var sae = SaeFiles.Load(saePath);
            string hookName = HookOf(sae, parse.GetValue(hook));
            using var subject = args.LoadSubject(parse);
            string folder = parse.GetValue(outFolder) ?? (Directory.Exists(saePath) ? saePath : Path.GetDirectoryName(Path.GetFullPath(saePath))!);
            var result = SaeEvaluationRun.Evaluate(subject, sae, hookName, args.Data(parse), args.ContextSizeFor(parse, subject),
                parse.GetValue(tokens), parse.GetValue(args.Seed), folder);
            string path = SaeEvaluationRun.Write(result.Json, folder);
            SaeEvaluationRun.Print(result.Json);
            Console.WriteLine($"Wrote {path}");
            return 0;
        }));
        return command;
    }

    internal static string HookOf(Sae sae, string? given) => given ?? sae.Config.Metadata.HookName
        ?? throw new CliArgumentException("The SAE's cfg.json names no hook (metadata.hook_name); pass --hook.");
}
