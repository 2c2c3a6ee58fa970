using System.CommandLine;
using System.Diagnostics;
using SharpLens.Organisms;
using SharpLens.Reports;
using SharpLens.Training;
using Spectre.Console;
using TorchSharp;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens tour`: train the induction-head organism and write its report.</summary>
static class TourCommand
{
    public static Command Create()
    {
        var defaults = new InductionSettings();
        var outOption = new Option<string>("--out") { Description = "Folder for report.html and summary.json.", DefaultValueFactory = _ => "./sharplens-tour" };
        var stepsOption = new Option<int>("--steps") { Description = "Training steps.", DefaultValueFactory = _ => defaults.Steps };
        var seedOption = new Option<long>("--seed") { Description = "Seed for the initial weights and the training data.", DefaultValueFactory = _ => defaults.Seed };
        var retrainOption = new Option<bool>("--retrain") { Description = "Train again even if the cache holds this organism (and replace it)." };
        var cacheOption = new Option<string?>("--cache")
        {
            Description = $"Cache root (default ${OrganismCache.EnvironmentVariable}, else ~/.cache/sharplens); the organism goes in <root>/organisms/.",
        };

        var command = new Command("tour", "Train a 2-layer attention-only model on repeated random tokens, find its induction heads, and write an HTML report.");
        foreach (var option in new Option[] { outOption, stepsOption, seedOption, retrainOption, cacheOption }) command.Options.Add(option);
        command.SetAction(parseResult => CommandErrors.Run(parseResult, () => Run(
            parseResult.GetValue(outOption)!,
            defaults with { Steps = parseResult.GetValue(stepsOption), Seed = parseResult.GetValue(seedOption) },
            parseResult.GetValue(retrainOption),
            parseResult.GetValue(cacheOption))));
        return command;
    }

    static int Run(string outFolder, InductionSettings settings, bool retrain, string? cacheRoot)
    {
        settings = settings.Validated(); // a bad value is reported by CommandErrors, naming the option

        // The matrices are tiny: a second thread only adds synchronisation, and on a busy machine it costs ten times more.
        UncaughtNativeCalls.SetNumThreads(1);
        var clock = Stopwatch.StartNew();
        using var organism = TrainOrLoadWithProgress(settings, cacheRoot, retrain);
        if (organism.FromCache) Console.WriteLine($"Reusing the trained organism in {organism.CacheFolder} (--retrain to train again).");

        var findings = InductionFindings.Measure(organism);
        var summary = InductionTourReport.Summarize(organism, findings, clock.Elapsed);
        string report = InductionTourReport.Write(outFolder, organism, findings, summary);

        Console.WriteLine($"Loss on the random half:   {findings.FirstHalfLoss:0.000}");
        Console.WriteLine($"Loss on the repeated half: {findings.RepeatedHalfLoss:0.000}  ({findings.LossRatio:0.0}x lower)");
        Console.WriteLine(InductionTourReport.InductionHeadsLine(findings));
        Console.WriteLine($"Top previous-token head: {findings.TopPreviousTokenHead}");
        Console.WriteLine($"Training: {organism.Training.Steps} steps in {organism.Training.Elapsed.TotalSeconds:0.0} s{(organism.FromCache ? " (cached)" : "")}; tour total {clock.Elapsed.TotalSeconds:0.0} s");
        Console.WriteLine($"Report:  {Path.GetFullPath(report)}");
        Console.WriteLine($"Summary: {Path.GetFullPath(Path.Combine(outFolder, InductionTourReport.SummaryFile))}");
        return 0;
    }

    static InductionOrganism TrainOrLoadWithProgress(InductionSettings settings, string? cacheRoot, bool retrain) =>
        TrainingDisplay.Run("Training induction organism", settings.Steps,
            progress => InductionOrganism.TrainOrLoad(settings, cacheRoot, retrain, progress),
            p => $"step {p.Step,5}/{p.TotalSteps}  loss {p.Loss:0.000}  lr {p.LearningRate:0.00e0}");
}
