using System.CommandLine;
using System.Globalization;
using SharpLens.Saes;
using SharpLens.Saes.Dashboards;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens sae dashboard`: feature dashboards of a saved SAE over held-out contexts, as one HTML page.</summary>
public static class SaeDashboardCommand
{
    public static Command Create()
    {
        var args = new SaeArguments();
        var saeOption = new Option<string>("--sae") { Description = "An SAELens folder or Gemma Scope params.npz.", Required = true };
        var hook = new Option<string?>("--hook") { Description = "The hook the SAE reads (default: its cfg.json metadata.hook_name)." };
        var features = new Option<string?>("--features") { Description = "Features to show, e.g. 0,5,9 (default: the --top densest)." };
        var top = new Option<int>("--top") { Description = "Without --features: show this many of the densest features.", DefaultValueFactory = _ => 10 };
        var contexts = new Option<int>("--contexts") { Description = "Held-out contexts to read.", DefaultValueFactory = _ => 512 };
        var outFile = new Option<string>("--out") { Description = "The HTML page to write.", Required = true };
        var command = new Command("dashboard",
            "Feature dashboards: for each feature, its top-activating held-out contexts with every token shaded by the activation, " +
            "samples across activation levels, its activation histogram and, when the model has an unembedding, the tokens its " +
            "decoder direction promotes and suppresses.\n\n" +
            "Example: sharplens sae dashboard --model all-MiniLM-L6-v2 --sae sae-minilm --corpus brown --top 20 --out dash.html");
        args.AddTo(command);
        foreach (var option in new Option[] { saeOption, hook, features, top, contexts, outFile }) command.Options.Add(option);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            using var sae = SaeFiles.Load(parse.GetValue(saeOption)!);
            string hookName = SaeEvalCommand.HookOf(sae, parse.GetValue(hook));
            using var subject = args.LoadSubject(parse);
            int contextSize = args.ContextSizeFor(parse, subject);
            int count = parse.GetValue(contexts);
            if (count < 1) throw new CliArgumentException("--contexts must be at least 1.");
            using var scope = torch.NewDisposeScope();
            var tokens = Saes.Data.Contexts.Batches(subject.Contexts(args.Data(parse), contextSize, heldOut: true, parse.GetValue(args.Seed)).Take(count), count).First(); // [contexts, pos]
            var options = new FeatureDashboardOptions
            {
                Features = ParseFeatures(parse.GetValue(features), sae.Config.DSae), TopByDensity = parse.GetValue(top),
                ExcludedTokenIds = subject.ExcludedTokenIds(), SkipFirstPosition = true,
                BatchSize = SaeEvaluationRun.ContextsPerCall(contextSize), Seed = parse.GetValue(args.Seed),
            };
            var dashboard = FeatureDashboard.Build(subject.Reader(hookName), x => sae.Encode(x.to(sae.W_enc.dtype)), tokens, subject.ToStrTokens, options,
                sae.W_dec.detach(), subject.W_U?.detach(), $"{subject.Name} {hookName}: {sae.Config.Architecture} SAE, {sae.Config.DSae} features");
            string path = parse.GetValue(outFile)!;
            dashboard.Save(path);
            Console.WriteLine($"Read {dashboard.TokensRead:N0} tokens of {tokens.shape[0]} held-out contexts; {dashboard.Features.Count} features.");
            foreach (var f in dashboard.Features)
                Console.WriteLine($"  feature {f.Feature,5}: density {f.Density:P2}, max {f.MaxActivation:0.00}; top: " +
                                  string.Join(" | ", f.TopExamples.Take(3).Select(e => e.Window[e.Center].Token)));
            if (dashboard.LogitNote is { } note) Console.WriteLine(note);
            Console.WriteLine($"Wrote {Path.GetFullPath(path)}");
            return 0;
        }));
        return command;
    }

    static IReadOnlyList<int>? ParseFeatures(string? text, int dSae)
    {
        if (text is null) return null;
        var ids = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s =>
            int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id) && id >= 0 && id < dSae ? id
                : throw new CliArgumentException($"--features: '{s}' is not a feature index in [0, {dSae - 1}].")).ToList();
        return ids.Count > 0 ? ids : throw new CliArgumentException("--features is empty: give indices such as 0,5,9.");
    }
}
