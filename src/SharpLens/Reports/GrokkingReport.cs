using System.Globalization;
using System.Text.Json;
using SharpLens.Grokking;
using SharpLens.Models;

namespace SharpLens.Reports;

/// <summary>The key numbers of a grokking run, written beside the report as summary.json for scripts.</summary>
public sealed record GrokkingSummary(
    int P,
    int Steps,
    double TrainAccuracy,
    double TestAccuracy,
    int? GrokStep,
    double GrokThreshold,
    int[] KeyFrequencies,
    double KeyFrequencyNormShare,
    double FinalRestrictedLoss,
    double FinalExcludedLoss,
    double FinalFullLoss,
    double FinalTrainLoss,
    double FinalTestLoss,
    double LogitCosineFitExplained,
    double NeuronsWellExplained,
    double TrainingSeconds,
    double TotalSeconds,
    ModularAdditionSettings Settings,
    IReadOnlyList<ProgressPoint> Progress);

/// <summary>Writes a grokking run's report.html (self-contained) and summary.json.</summary>
public static class GrokkingReport
{
    public const string ReportFile = "report.html", SummaryFile = "summary.json";

    public static GrokkingSummary Summarize(GrokkingAnalysis a, TimeSpan total) => new(
        a.Settings.P, a.Training.Steps, a.Final.TrainAccuracy, a.Final.TestAccuracy, a.GrokStep, ModularAdditionSettings.GrokThreshold,
        a.KeyFrequencies, a.KeyFrequencyNormShare, a.Final.RestrictedLoss, a.Final.ExcludedLoss, a.Final.FullLoss, a.Final.TrainLoss,
        a.Final.TestLoss, a.CosineExplained, a.Neurons.ShareWellExplained(), Math.Round(a.Training.Elapsed.TotalSeconds, 2),
        Math.Round(total.TotalSeconds, 2), a.Settings, a.Progress);

    /// <summary>Writes both files; returns the report's path.</summary>
    public static string Write(string folder, GrokkingAnalysis analysis, GrokkingSummary summary)
    {
        Directory.CreateDirectory(folder);
        string reportPath = Path.Combine(folder, ReportFile);
        Build(analysis).Save(reportPath);
        IO.AtomicFile.WriteAllText(Path.Combine(folder, SummaryFile), IO.SharpLensJson.Serialize(summary));
        return reportPath;
    }

    static string G(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);
    static string E(double v) => v.ToString("0.00e0", CultureInfo.InvariantCulture);
    static string Pct(double v) => (100 * v).ToString("0.0", CultureInfo.InvariantCulture) + "%";

    public static HtmlReport Build(GrokkingAnalysis a)
    {
        var s = a.Settings;
        var report = new HtmlReport($"SharpLens: grokking modular addition (p = {s.P})");
        report.Paragraph($"A 1-layer transformer (d_model {s.DModel}, {s.NHeads} heads of {s.DHead}, d_mlp {s.DMlp}, ReLU, no LayerNorm) learns " +
            $"(a + b) mod {s.P} from {Pct(s.TrainFraction)} of the {s.P * s.P} pairs, read at the '=' of 'a b ='. With AdamW (lr {G(s.LearningRate)}, " +
            $"weight decay {G(s.WeightDecay)}, full batch) it first memorises the training pairs, then, much later, generalises. As in Nanda et al. (2023), " +
            "the algorithm it ends with can be read off its weights: numbers are embedded as cos and sin of a few key frequencies, and the logits " +
            "are sums of cos(w(a + b − c)).", "lead");
        string verdict = a.GrokStep is int g
            ? $"Grokked: test loss fell below {G(ModularAdditionSettings.GrokThreshold)} at step {g}; final test accuracy {Pct(a.Final.TestAccuracy)}."
            : $"Not grokked within {a.Training.Steps} steps: test loss {G(a.Final.TestLoss)}, test accuracy {Pct(a.Final.TestAccuracy)}. Train longer (--steps) and the run resumes.";
        report.Paragraph(verdict, "verdict");
        report.Figures([
            ("test accuracy", Pct(a.Final.TestAccuracy)),
            ("train accuracy", Pct(a.Final.TrainAccuracy)),
            ("grok step", a.GrokStep?.ToString(CultureInfo.InvariantCulture) ?? "—"),
            ("key frequencies", string.Join(", ", a.KeyFrequencies)),
            ("their share of the embedding's Fourier norm²", Pct(a.KeyFrequencyNormShare)),
            ("training", $"{a.Training.Steps} steps, {a.Training.Elapsed.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} s"),
        ]);

        var markers = a.GrokStep is int gs ? new List<Marker> { new(gs, "grok") } : [];
        report.Heading("Loss (log scale)");
        int every = Math.Max(1, a.Training.Steps / 1500);
        var trainSteps = Enumerable.Range(1, a.Training.Steps).Where(i => i % every == 0 || i == 1).ToList();
        report.Raw(Svg.LinePlot([
            new Series("train loss", [.. trainSteps.Select(i => (double)i)], [.. trainSteps.Select(i => a.Training.Losses[i - 1])], Svg.Blue),
            new Series("test loss", [.. a.Training.TestLosses.Select(t => (double)t.Step)], [.. a.Training.TestLosses.Select(t => t.Loss)], Svg.Orange)],
            "step", "cross-entropy (nats, log scale)", width: 1000, height: 340, markers: markers, logY: true));
        report.Paragraph($"The grok step is the first step at which the test loss, measured every {s.EvaluateEvery} steps, is below {G(ModularAdditionSettings.GrokThreshold)}. " +
            $"ln {s.P} = {G(Math.Log(s.P))} nats is a uniform guess.", "note");

        report.Heading("Progress measures over checkpoints");
        report.Paragraph("With the final model's key frequencies: the restricted loss keeps only the logits' components along cos/sin(w(a + b)) for the key " +
            "frequencies (plus their mean), on all pairs; the excluded loss removes exactly those components, on the training pairs. The restricted loss " +
            "falls and the excluded loss rises while the test loss is still high: the Fourier circuit forms before the model generalises, and " +
            "the memorising part is cleaned up afterwards.");
        var steps = a.Progress.Select(x => (double)x.Step).ToList();
        report.Raw(Svg.LinePlot([
            new Series("train loss", steps, [.. a.Progress.Select(x => x.TrainLoss)], Svg.Blue),
            new Series("test loss", steps, [.. a.Progress.Select(x => x.TestLoss)], Svg.Orange),
            new Series("restricted loss", steps, [.. a.Progress.Select(x => x.RestrictedLoss)], Svg.Green),
            new Series("excluded loss", steps, [.. a.Progress.Select(x => x.ExcludedLoss)], "#9333ea")],
            "step", "cross-entropy (nats, log scale)", width: 1000, height: 340, markers: markers, logY: true));
        report.Gallery([
            ("Gini coefficient of the embedding's per-frequency norms: rises as the embedding concentrates on the key frequencies.",
                Svg.LinePlot([new Series("Gini", steps, [.. a.Progress.Select(x => x.Gini)], Svg.Blue)], "step", "Gini", width: 480, height: 260, markers: markers, yMin: 0)),
            ("Total sum of squared weights: weight decay shrinks it once the memorising solution is replaced.",
                Svg.LinePlot([new Series("Σ w²", steps, [.. a.Progress.Select(x => x.SumOfSquaredWeights)], Svg.Orange)], "step", "sum of squared weights", width: 480, height: 260, markers: markers, yMin: 0)),
        ]);
        report.Table(["step", "train loss", "test loss", "test acc.", "restricted", "excluded", "Gini", "Σ w²"],
            Thin(a.Progress, 16).Select(x => (IReadOnlyList<string>)[x.Step.ToString(CultureInfo.InvariantCulture), E(x.TrainLoss), E(x.TestLoss),
                Pct(x.TestAccuracy), E(x.RestrictedLoss), E(x.ExcludedLoss), G(x.Gini), G(x.SumOfSquaredWeights)]));

        report.Heading("Fourier norms of the embedding");
        int frequencies = FourierBasis.Frequencies(s.P);
        var ks = Enumerable.Range(1, frequencies).Select(k => (double)k).ToList();
        report.Raw(Svg.LinePlot([new Series("‖W_E‖ along frequency k (final)", ks, [.. a.EmbeddingNorms.Skip(1)], Svg.Blue)],
            "frequency k", "norm", width: 1000, height: 280, markers: [.. a.KeyFrequencies.Select(k => new Marker(k, $"k={k}"))], yMin: 0));
        if (a.NormsOverTime.Count > 0)
        {
            var thinned = Thin(a.NormsOverTime, 40);
            double max = thinned.SelectMany(t => t.Norms.Skip(1)).Max();
            var grid = new float[thinned.Count, frequencies];
            for (int i = 0; i < thinned.Count; i++) for (int k = 1; k <= frequencies; k++) grid[i, k - 1] = (float)thinned[i].Norms[k];
            report.Gallery([($"Embedding norm per frequency (columns) at each checkpoint (rows), white 0 to blue {G(max)}: the key frequencies emerge and the rest decay.",
                Svg.Heatmap(grid, [.. thinned.Select(t => $"{t.Step}")], [.. ks.Select(k => $"{k}")], "step", "frequency", 0, max, cell: Math.Clamp(900 / frequencies, 8, 18)))]);
        }

        report.Heading("Neurons cluster by frequency");
        var clusters = a.Neurons.Clusters();
        report.Paragraph($"Each MLP neuron's activation at '=' is a function of (a, b). Its 2D Fourier transform puts {Pct(a.Neurons.ShareWellExplained())} of the live " +
            "neurons at least 85% in the terms of a single frequency (const, cos k, sin k of a and of b). Neurons per frequency:");
        report.Table(["frequency", "neurons", "mean share of variance explained", "key?"],
            clusters.Select(c => (IReadOnlyList<string>)[c.Frequency.ToString(CultureInfo.InvariantCulture), c.Count.ToString(CultureInfo.InvariantCulture),
                Pct(c.MeanExplained), a.KeyFrequencies.Contains(c.Frequency) ? "yes" : ""]));
        var examples = clusters.Take(3).Select(c => Enumerable.Range(0, a.Neurons.Neurons).Where(n => a.Neurons.Frequency[n] == c.Frequency)
            .OrderByDescending(n => a.Neurons.Explained[n]).First()).ToList();
        var labels = Enumerable.Range(0, s.P).Select(i => i % 10 == 0 ? $"{i}" : "").ToList();
        report.Gallery(examples.Select(n =>
        {
            var values = new float[s.P, s.P];
            for (int x = 0; x < s.P; x++) for (int y = 0; y < s.P; y++) values[x, y] = a.Neurons.Activations[x, y, n];
            double max = values.Cast<float>().Max();
            return ($"neuron {n}: frequency {a.Neurons.Frequency[n]}, {Pct(a.Neurons.Explained[n])} of its variance; activation (white 0, blue {G(max)}) over a (rows) and b (columns)",
                Svg.Heatmap(values, labels, labels, "a", "b", 0, Math.Max(max, 1e-9), cell: Math.Clamp(340 / s.P, 2, 10)));
        }));

        report.Heading("Logits are cos(w(a + b − c))");
        report.Paragraph($"Fitting the (row-centred) logits over all pairs and answers by Σ_k α_k cos(w_k(a + b − c)) over the key frequencies explains " +
            $"{Pct(a.CosineExplained)} of their variance. Restricted to these frequencies the loss is {E(a.Final.RestrictedLoss)} against {E(a.Final.FullLoss)} " +
            $"for the full logits (all pairs); without them, the training loss rises from {E(a.Final.TrainLoss)} to {E(a.Final.ExcludedLoss)}.");
        report.Table(["key frequency k", "w_k = 2πk/p", "α_k"],
            a.KeyFrequencies.Select((k, i) => (IReadOnlyList<string>)[k.ToString(CultureInfo.InvariantCulture), G(FourierBasis.Omega(k, s.P)), G(a.CosineCoefficients[i])]));
        report.Paragraph($"Seed {s.Seed}, data seed {s.DataSeed}; {a.Progress.Count} checkpoints every {s.CheckpointEvery} steps in checkpoints/ (config.json + model.safetensors with TransformerLens names).", "note");
        return report;
    }

    /// <summary>At most about <paramref name="count"/> evenly spaced items, always keeping the last.</summary>
    static List<T> Thin<T>(IReadOnlyList<T> items, int count)
    {
        int every = Math.Max(1, (int)Math.Ceiling(items.Count / (double)count));
        return [.. items.Where((_, i) => i % every == 0 || i == items.Count - 1)];
    }
}
