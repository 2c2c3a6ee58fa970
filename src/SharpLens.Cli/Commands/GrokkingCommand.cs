using System.CommandLine;
using System.Diagnostics;
using SharpLens.Grokking;
using SharpLens.Models;
using SharpLens.Reports;
using SharpLens.Training;
using Spectre.Console;
using TorchSharp;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens grokking`: train (or resume) the modular-addition model, analyse every checkpoint, write the report.</summary>
static class GrokkingCommand
{
    public static Command Create()
    {
        var defaults = new ModularAdditionSettings();
        var pOption = new Option<int?>("--p") { Description = $"The modulus (odd; default {defaults.P}, or {ModularAdditionSettings.Fast.P} with --fast)." };
        var stepsOption = new Option<int?>("--steps") { Description = $"Training steps (default {defaults.Steps}, or {ModularAdditionSettings.Fast.Steps} with --fast)." };
        var seedOption = new Option<long?>("--seed") { Description = $"Seed for the initial weights (default {defaults.Seed})." };
        var freezeBiasesOption = new Option<bool>("--freeze-biases") { Description = "Keep every bias at zero, as TransformerLens's grokking demo does (default: biases are trained from zero)." };
        var fastOption = new Option<bool>("--fast") { Description = "The fast variant: smaller p, more training data; groks in about a minute." };
        var outOption = new Option<string>("--out") { Description = "Folder for checkpoints, report.html and summary.json; an existing run there is resumed.", DefaultValueFactory = _ => "./sharplens-grokking" };
        var threadsOption = new Option<int>("--threads") { Description = "Torch CPU threads (default: all cores; on an idle 2-core machine 2 threads gave 5.9 steps/s against 4.2 with 1).", DefaultValueFactory = _ => Environment.ProcessorCount };

        var command = new Command("grokking", "Replicate Nanda et al. (2023): a 1-layer transformer groks modular addition; measure its Fourier circuit over training and write an HTML report.");
        foreach (var option in new Option[] { pOption, stepsOption, seedOption, freezeBiasesOption, fastOption, outOption, threadsOption }) command.Options.Add(option);
        command.SetAction(parseResult => CommandErrors.Run(parseResult, () =>
        {
            var settings = parseResult.GetValue(fastOption) ? ModularAdditionSettings.Fast : defaults;
            if (parseResult.GetValue(pOption) is int p) settings = settings with { P = p };
            if (parseResult.GetValue(stepsOption) is int steps) settings = settings with { Steps = steps };
            if (parseResult.GetValue(seedOption) is long seed) settings = settings with { Seed = seed };
            if (parseResult.GetValue(freezeBiasesOption)) settings = settings with { TrainBiases = false };
            return Run(parseResult.GetValue(outOption)!, settings, parseResult.GetValue(threadsOption));
        }));
        return command;
    }

    static int Run(string outFolder, ModularAdditionSettings settings, int threads)
    {
        settings = settings.Validated(); // a bad value is reported by CommandErrors, naming the option

        // Measured on the p = 113 model: one thread is faster than two (see README, "Grokking").
        UncaughtNativeCalls.SetNumThreads(Math.Max(1, threads));
        var clock = Stopwatch.StartNew();
        using var data = new ModularAddition(settings);
        var (model, record) = TrainWithProgress(settings, data, outFolder); // an --out folder of another run is refused by CommandErrors
        using (model)
        {
            foreach (string refused in record.CheckpointsRefused) Console.WriteLine(refused);
            if (record.ResumedFrom is int from) Console.WriteLine($"Resumed from the checkpoint at step {from}.");
            Console.WriteLine($"Training: {record.Steps} steps, {record.Elapsed.TotalSeconds:0.0} s of training in total; final train loss {record.Losses[^1]:0.0000}, test loss {record.TestLosses[^1].Loss:0.0000}");
            return Analyse(outFolder, settings, data, model, record, clock);
        }
    }

    static int Analyse(string outFolder, ModularAdditionSettings settings, ModularAddition data, HookedTransformer model, TrainingRecord record, Stopwatch clock)
    {
        Console.WriteLine("Analysing the final model and every checkpoint...");
        var analysis = GrokkingAnalysis.Run(settings, data, model, record, Path.Combine(outFolder, GrokkingTraining.CheckpointsFolder));
        var summary = GrokkingReport.Summarize(analysis, clock.Elapsed);
        string report = GrokkingReport.Write(outFolder, analysis, summary);
        var f = analysis.Final;
        Console.WriteLine($"Accuracy: train {f.TrainAccuracy:P2}, test {f.TestAccuracy:P2}");
        Console.WriteLine(analysis.GrokStep is int g ? $"Grok step (test loss < {ModularAdditionSettings.GrokThreshold}): {g}" : $"Not grokked yet (test loss {f.TestLoss:0.0000}); train longer with --steps.");
        Console.WriteLine($"Key frequencies: {string.Join(", ", analysis.KeyFrequencies)}  ({analysis.KeyFrequencyNormShare:P1} of the embedding's Fourier norm²)");
        Console.WriteLine($"Losses: full {f.FullLoss:0.00e0}, restricted {f.RestrictedLoss:0.00e0}, excluded {f.ExcludedLoss:0.00e0} (train {f.TrainLoss:0.00e0})");
        Console.WriteLine($"Logit variance explained by cos(w(a+b-c)): {analysis.CosineExplained:P1}; neurons well explained by one frequency: {analysis.Neurons.ShareWellExplained():P1}");
        Console.WriteLine($"Total {clock.Elapsed.TotalSeconds:0.0} s");
        Console.WriteLine($"Report:  {Path.GetFullPath(report)}");
        Console.WriteLine($"Summary: {Path.GetFullPath(Path.Combine(outFolder, GrokkingReport.SummaryFile))}");
        return 0;
    }

    static (HookedTransformer, TrainingRecord) TrainWithProgress(ModularAdditionSettings settings, ModularAddition data, string outFolder) =>
        TrainingDisplay.Run($"Training p = {settings.P}", settings.Steps,
            progress => GrokkingTraining.TrainOrResume(settings, data, outFolder, progress),
            p => $"step {p.Step,6}/{p.TotalSteps}  train loss {p.Loss:0.00000}  test loss {p.TestLoss:0.00000}", plainLines: 40);
}
