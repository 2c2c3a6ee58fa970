using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SharpLens.Interop;
using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Techniques;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens probe`: a linear probe per layer on labelled prompts; accuracy, AUROC and directions.</summary>
public static class ProbeCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var data = new Option<string?>("--data")
        {
            Description = "Labelled prompts, one per line: LABEL<TAB>TEXT, with LABEL a class number (0, 1, ...). Lines starting with # are skipped. " +
                          "Omit with --model latent to use the organism's own prompts, labelled by its planted latent.",
        };
        var dataTokens = new Option<bool>("--data-tokens") { Description = "The TEXT column of --data holds token ids (\"0 5 9 12\") rather than text." };
        var hooks = new Option<string[]>("--hooks")
        {
            Description = "Hook names to probe (default: hook_embed, each layer's resid_pre, and the last resid_post).",
            AllowMultipleArgumentsPerToken = true,
        };
        var kind = new Option<string>("--kind") { Description = "logistic (logistic regression, binary or multinomial) or mean-diff (difference of class means; binary).", DefaultValueFactory = _ => "logistic" };
        var l2 = new Option<double>("--l2") { Description = "L2 penalty on the logistic probe's weights.", DefaultValueFactory = _ => new ProbeSettings().L2 };
        var testFraction = new Option<double>("--test-fraction") { Description = "Share of prompts held out to measure accuracy.", DefaultValueFactory = _ => new ProbeSettings().TestFraction };
        var seed = new Option<long>("--seed") { Description = "Seeds the train / test split (and the organism's prompts).", DefaultValueFactory = _ => 0 };
        var count = new Option<int>("--count") { Description = "With --model latent and no --data: how many prompts to generate.", DefaultValueFactory = _ => 800 };
        var outOption = new Option<string?>("--out")
        {
            Description = "Folder for summary.json, accuracy.npy [hooks], auroc.npy [hooks] and one direction-<hook>.npy [d_model] per hook (usable as steer --direction).",
        };
        var command = new Command("probe",
            "Linear probes: at each layer, train a classifier on the activation at each prompt's last token to predict its label, " +
            "and report held-out accuracy (and AUROC for two classes). A label the model represents linearly is read with high " +
            "accuracy from the layers where it is computed; chance elsewhere.\n\n" +
            "Examples:\n  sharplens probe --model latent --out probe/\n  sharplens probe --model ./gpt2 --data sentiment.tsv --out probe/");
        model.AddTo(command);
        foreach (var o in new Option[] { data, dataTokens, hooks, kind, l2, testFraction, seed, count, outOption }) command.Options.Add(o);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            UncaughtNativeCalls.SetNumThreads(Math.Min(4, Environment.ProcessorCount));
            using var m = model.Load(parse);
            var probeKind = parse.GetValue(kind) switch
            {
                "logistic" => ProbeKind.Logistic,
                "mean-diff" => ProbeKind.MeanDifference,
                var other => throw new CliArgumentException($"--kind '{other}' is not known: use logistic or mean-diff."),
            };
            var settings = new ProbeSettings { L2 = parse.GetValue(l2), TestFraction = parse.GetValue(testFraction), Seed = parse.GetValue(seed) }.Validated();
            var (tokens, mask, labels) = parse.GetValue(data) is { } file
                ? ReadData(m, file, parse.GetValue(dataTokens))
                : OrganismData(parse.GetValue(model.Model)!, parse.GetValue(count), parse.GetValue(seed));
            var names = parse.GetValue(hooks) is { Length: > 0 } given ? given : ProbeSweep.ResidualHooks(m);
            foreach (var name in names) m.GetHookPoint(name);

            var results = ProbeSweep.Run(m, tokens, labels, [.. names], probeKind, settings, mask);
            Console.WriteLine($"{labels.shape[0]} prompts, {(int)(labels.max().item<long>() + 1)} classes, {probeKind} probe, {settings.TestFraction:P0} held out");
            Console.WriteLine($"  {"hook",-30} {"train acc",9} {"test acc",9} {"AUROC",7}");
            foreach (var r in results)
                Console.WriteLine($"  {r.Hook,-30} {r.TrainAccuracy,9:0.000} {r.TestAccuracy,9:0.000} {(r.TestAuroc is double a ? a.ToString("0.000", CultureInfo.InvariantCulture) : "—"),7}");

            if (parse.GetValue(outOption) is { } folder)
            {
                Directory.CreateDirectory(folder);
                NumpyFiles.SaveNpy(Path.Combine(folder, "accuracy.npy"), tensor(results.Select(r => (float)r.TestAccuracy).ToArray()));
                NumpyFiles.SaveNpy(Path.Combine(folder, "auroc.npy"), tensor(results.Select(r => (float)(r.TestAuroc ?? double.NaN)).ToArray()));
                foreach (var r in results)
                    NumpyFiles.SaveNpy(Path.Combine(folder, $"direction-{r.Hook}.npy"), r.Probe.Direction().to(ScalarType.Float32).contiguous());
                var summary = new System.Text.Json.Nodes.JsonArray([.. results.Select(r => new System.Text.Json.Nodes.JsonObject
                {
                    ["hook"] = r.Hook, ["train_accuracy"] = r.TrainAccuracy, ["test_accuracy"] = r.TestAccuracy,
                    ["test_auroc"] = r.TestAuroc, ["direction"] = $"direction-{r.Hook}.npy",
                })]);
                File.WriteAllText(Path.Combine(folder, "summary.json"), summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                Console.WriteLine($"Wrote {Path.GetFullPath(folder)}");
            }
            foreach (var r in results) r.Dispose();
            return 0;
        }));
        return command;
    }

    static (Tensor Tokens, Tensor? Mask, Tensor Labels) OrganismData(string modelName, int count, long seed)
    {
        if (modelName != "latent")
            throw new CliArgumentException("Give --data FILE (LABEL<TAB>TEXT per line); only --model latent has built-in labelled prompts.");
        var prompts = LatentOrganism.Prompts(new LatentSettings(), count, new Generator((ulong)seed + 1));
        return (prompts.Tokens, null, prompts.Latent);
    }

    static (Tensor Tokens, Tensor? Mask, Tensor Labels) ReadData(HookedTransformer model, string file, bool asTokens)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"--data {file}: no such file.");
        var rows = new List<(long Label, long[] Ids)>();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(file))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line) || line.StartsWith('#')) continue;
            int tab = line.IndexOf('\t');
            if (tab < 0 || !long.TryParse(line.AsSpan(0, tab), NumberStyles.Integer, CultureInfo.InvariantCulture, out long label) || label < 0)
                throw new SharpLensFileException(file, $"line {lineNumber}", $"{file}:{lineNumber}: expected LABEL<TAB>TEXT with LABEL a class number 0, 1, ...; got \"{(line.Length > 80 ? line[..80] + "…" : line)}\".");
            string text = line[(tab + 1)..];
            var ids = asTokens ? PromptArguments.ParseIds(text, $"{file}:{lineNumber}") : model.ToTokens(text)[0];
            rows.Add((label, ids.data<long>().ToArray()));
        }
        if (rows.Count < 4) throw new SharpLensFileException(file, null, $"{file} has {rows.Count} labelled prompts; a probe needs at least a few per class (tens are better).");
        int longest = rows.Max(r => r.Ids.Length);
        var tokens = zeros([rows.Count, longest], ScalarType.Int64);
        var mask = zeros([rows.Count, longest], ScalarType.Int64);
        for (int i = 0; i < rows.Count; i++)
        {
            tokens[i, ..rows[i].Ids.Length] = tensor(rows[i].Ids);
            mask[i, ..rows[i].Ids.Length] = 1;
        }
        return (tokens, mask, tensor(rows.Select(r => r.Label).ToArray()));
    }
}
