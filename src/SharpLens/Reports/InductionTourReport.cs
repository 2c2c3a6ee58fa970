using System.Globalization;
using System.Text.Json;
using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Techniques;

namespace SharpLens.Reports;

/// <summary>The key numbers of a tour, written beside the report as summary.json.</summary>
public sealed record TourSummary(
    string Model,
    string Settings,
    int TrainSteps,
    double TrainSeconds,
    bool FromCache,
    double FinalTrainLoss,
    double LossFirstHalf,
    double LossRepeatedHalf,
    double LossRatio,
    IReadOnlyList<TourSummary.Head> InductionHeads,
    TourSummary.Head TopInductionHead,
    TourSummary.Head TopPreviousTokenHead,
    TourSummary.Head TopDuplicateTokenHead,
    double TotalSeconds)
{
    public sealed record Head(string Name, int Layer, int Index, double Score);
    internal static Head Of(ScoredHead h) => new(h.Head.ToString(), h.Head.Layer, h.Head.Head, Math.Round(h.Score, 4));
}

/// <summary>Writes the tour's report.html (self-contained) and summary.json into a folder.</summary>
public static class InductionTourReport
{
    public const string ReportFile = "report.html", SummaryFile = "summary.json";

    public static TourSummary Summarize(InductionOrganism organism, InductionFindings findings, TimeSpan total) => new(
        organism.Model.Config.ModelName,
        organism.Settings.CacheName,
        organism.Training.Steps,
        Math.Round(organism.Training.Elapsed.TotalSeconds, 2),
        organism.FromCache,
        Math.Round(organism.Training.FinalLoss(), 4),
        Math.Round(findings.FirstHalfLoss, 4),
        Math.Round(findings.RepeatedHalfLoss, 4),
        Math.Round(findings.LossRatio, 2),
        [.. findings.InductionHeads.Select(TourSummary.Of)],
        TourSummary.Of(findings.TopInductionHead),
        TourSummary.Of(findings.TopPreviousTokenHead),
        TourSummary.Of(findings.TopDuplicateTokenHead),
        Math.Round(total.TotalSeconds, 2));

    /// <summary>Writes both files; returns the report's path.</summary>
    public static string Write(string folder, InductionOrganism organism, InductionFindings findings, TourSummary summary)
    {
        Directory.CreateDirectory(folder);
        string reportPath = Path.Combine(folder, ReportFile);
        Build(organism, findings).Save(reportPath);
        IO.AtomicFile.WriteAllText(Path.Combine(folder, SummaryFile), IO.SharpLensJson.Serialize(summary));
        return reportPath;
    }

    /// <summary>One line naming the induction heads: "Induction heads: 1.2 (score 0.93), 1.0 (score 0.71)".</summary>
    public static string InductionHeadsLine(InductionFindings findings) => findings.InductionHeads.Count == 0
        ? $"No head reaches an induction score of {InductionFindings.HeadThreshold:0.0}; the strongest is {findings.TopInductionHead}."
        : $"Induction heads: {string.Join(", ", findings.InductionHeads)}";

    public static HtmlReport Build(InductionOrganism organism, InductionFindings findings)
    {
        var s = organism.Settings;
        var cfg = organism.Model.Config;
        int n = s.HalfLength;
        string I(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);
        var report = new HtmlReport("SharpLens tour: induction heads in a 2-layer attention-only transformer");

        report.Paragraph(
            $"A {cfg.NLayers}-layer attention-only transformer (d_model {cfg.DModel}, {cfg.NHeads} heads of {cfg.DHead}, " +
            $"{(cfg.NormalizationType == Normalization.None ? "no normalisation" : $"{cfg.NormalizationType} norm")}, learned positions, vocabulary {cfg.DVocab}) was trained on random token sequences " +
            $"that repeat themselves. The random tokens cannot be predicted; the repeat can, by any head that looks back " +
            "to the earlier copy of the current token and reads the token after it: an induction head.", "lead");
        report.Paragraph(InductionHeadsLine(findings), "verdict");
        report.Figures([
            ("loss, random half", I(findings.FirstHalfLoss)),
            ("loss, repeated half", I(findings.RepeatedHalfLoss)),
            ("ratio", $"{findings.LossRatio.ToString("0.0", CultureInfo.InvariantCulture)}×"),
            ("top induction head", findings.TopInductionHead.ToString()),
            (organism.FromCache ? "training (cached)" : "training", $"{organism.Training.Steps} steps, {organism.Training.Elapsed.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} s"),
        ]);

        report.Heading("Training");
        var steps = Enumerable.Range(1, organism.Training.Steps).Select(i => (double)i).ToList();
        var smooth = Smooth(organism.Training.Losses, Math.Max(1, organism.Training.Steps / 50));
        report.Raw(Svg.LinePlot([
            new Series("loss per batch", steps, organism.Training.Losses, "#cbd5e1"),
            new Series("moving average", steps, smooth, Svg.Blue)], "step", "cross-entropy (nats)", yMin: 0));
        report.Paragraph($"AdamW, peak learning rate {s.LearningRate}, warmup {s.WarmupSteps} steps then cosine decay, batch {s.BatchSize}, seed {s.Seed}. " +
            $"Training sequences repeat a random stretch of {s.MinRepeatLength}…{n} tokens at a random place, so position alone never says where the copy is. " +
            $"ln({s.Vocab - 1}) = {I(Math.Log(s.Vocab - 1))} nats is the loss of a uniform guess.", "note");

        report.Heading("Loss at each position");
        var positions = Enumerable.Range(1, findings.LossByPosition.Length).Select(i => (double)i).ToList();
        report.Raw(Svg.LinePlot([new Series("mean loss predicting token t", positions, findings.LossByPosition, Svg.Orange)],
            "position t of the predicted token", "cross-entropy (nats)", markers: [new Marker(n + 0.5, "repeat starts")], yMin: 0));
        report.Paragraph($"On 64 fresh sequences [BOS, r₁…r{n}, r₁…r{n}]: mean loss {I(findings.FirstHalfLoss)} on the random half, " +
            $"{I(findings.RepeatedHalfLoss)} on the repeat, {findings.LossRatio.ToString("0.0", CultureInfo.InvariantCulture)} times lower.");

        report.Heading("Head scores");
        report.Paragraph("For each head, the mean attention it puts where a mechanism would look, on the same sequences: " +
            "induction (the token after the earlier copy of the current token), previous-token (the position just before), " +
            "duplicate-token (earlier copies of the current token). 1 means all of its attention goes there.");
        var sc = findings.Scores;
        var rows = Enumerable.Range(0, sc.Layers).Select(l => $"layer {l}").ToList();
        var cols = Enumerable.Range(0, sc.Heads).Select(h => $"head {h}").ToList();
        report.Gallery([
            ("induction score", Svg.Heatmap(ToFloat(sc.Induction), rows, cols, "layer", "head", cell: 44, annotate: true)),
            ("previous-token score", Svg.Heatmap(ToFloat(sc.PreviousToken), rows, cols, "layer", "head", cell: 44, annotate: true)),
            ("duplicate-token score", Svg.Heatmap(ToFloat(sc.DuplicateToken), rows, cols, "layer", "head", cell: 44, annotate: true)),
        ]);
        report.Table(["head", "induction", "previous-token", "duplicate-token"],
            HeadScores.Ranked(sc.Induction).Select(h => (IReadOnlyList<string>)[h.Head.ToString(), I(h.Score),
                I(sc.PreviousToken[h.Head.Layer, h.Head.Head]), I(sc.DuplicateToken[h.Head.Layer, h.Head.Head])]));

        report.Heading("Attention patterns of the top heads");
        report.Paragraph("Each row is a query position, each column a key position, on one repeated sequence. An induction head " +
            $"draws a stripe {n - 1} positions below the diagonal in the repeated half; a previous-token head draws the line just below the diagonal.");
        var charts = findings.Patterns.Select(p =>
        {
            var labels = p.Tokens.Select((t, i) => i == 0 ? "BOS" : $"{t}").ToList();
            string role = p.Head == findings.TopInductionHead.Head ? "top induction head"
                : p.Head == findings.TopPreviousTokenHead.Head ? "top previous-token head" : "top duplicate-token head";
            return ($"head {p.Head}: {role} (induction {I(sc.Induction[p.Head.Layer, p.Head.Head])}, previous-token {I(sc.PreviousToken[p.Head.Layer, p.Head.Head])})",
                Svg.Heatmap(p.Pattern, labels, labels, "query", "key", cell: Math.Clamp(480 / p.Tokens.Length, 6, 16)));
        });
        report.Gallery(charts);
        report.Paragraph($"Cached weights: {organism.CacheFolder ?? "(not cached)"}.", "note");
        return report;
    }

    static float[,] ToFloat(double[,] values)
    {
        var result = new float[values.GetLength(0), values.GetLength(1)];
        for (int i = 0; i < values.GetLength(0); i++)
            for (int j = 0; j < values.GetLength(1); j++) result[i, j] = (float)values[i, j];
        return result;
    }

    /// <summary>Trailing moving average over <paramref name="window"/> steps.</summary>
    static List<double> Smooth(IReadOnlyList<double> values, int window)
    {
        var result = new List<double>(values.Count);
        double sum = 0;
        for (int i = 0; i < values.Count; i++)
        {
            sum += values[i];
            if (i >= window) sum -= values[i - window];
            result.Add(sum / Math.Min(i + 1, window));
        }
        return result;
    }
}
