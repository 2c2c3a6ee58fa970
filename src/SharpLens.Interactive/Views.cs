using SharpLens.Hooks;
using SharpLens.Organisms;
using SharpLens.Reports;
using SharpLens.Techniques;
using SharpLens.Techniques.Patching;
using SharpLens.Training;
using static SharpLens.Interactive.Inline;

namespace SharpLens.Interactive;

/// <summary>The HTML of each SharpLens result type that displays itself; the formatters call these.</summary>
public static class Views
{
    /// <summary>A patching sweep: the two metrics, then the [layer, position] or [layer, head] heatmap, cells annotated.</summary>
    public static string Patching(PatchingResult result)
    {
        string figures = Figures([("clean metric", F(result.CleanMetric)), ("corrupted metric", F(result.CorruptedMetric)), ("forward passes", result.ForwardPasses.ToString())]);
        string title = $"Activation patching: {result.Component} [{string.Join(", ", result.Dims)}]";
        if (result.Values.dim() != 2) return Fragment(title, figures + TensorHtml.Render(result.Values));
        var table = result.ToArray2D();
        var flat = table.Cast<float>().ToList();
        var rows = Enumerable.Range(0, table.GetLength(0)).Select(i => i.ToString()).ToList();
        var cols = Enumerable.Range(0, table.GetLength(1)).Select(i => i.ToString()).ToList();
        // Cells wide enough for "-0.01"; past 24 columns only the colours (hover for the values).
        string heatmap = Svg.Heatmap(table, rows, cols, result.Dims[0], result.Dims[1], min: Math.Min(0, flat.Min()), max: Math.Max(1, flat.Max()),
            cell: cols.Count <= 16 ? 36 : 24, annotate: cols.Count <= 24);
        return Fragment(title, figures + heatmap + "<div class=\"sl-note\">0 = the corrupted run, 1 = the clean run: how much of the clean behaviour patching that one activation restores.</div>");
    }

    /// <summary>A training run's loss curve.</summary>
    public static string LossCurve(TrainingRecord record)
    {
        if (record.Losses.Count == 0) return Fragment("Training record", "<div class=\"sl-note\">No steps recorded (loaded from the cache without its losses).</div>");
        var x = Enumerable.Range(1, record.Losses.Count).Select(i => (double)i).ToList();
        string plot = Svg.LinePlot([new Series("loss", x, [.. record.Losses], Svg.Blue)], "step", "loss", width: 640, height: 260);
        return Fragment($"Training: {record.Losses.Count} steps in {F(record.Elapsed.TotalSeconds, "0.0")} s",
            Figures([("first loss", F(record.Losses[0])), ("last loss", F(record.Losses[^1])), ("min loss", F(record.Losses.Min()))]) + plot);
    }

    /// <summary>Previous-token, duplicate-token and induction scores per [layer, head].</summary>
    public static string HeadScoreMaps(HeadScores scores) => Gallery([
        ("previous-token score", ScoreMap(scores.PreviousToken)),
        ("duplicate-token score", ScoreMap(scores.DuplicateToken)),
        ("induction score", ScoreMap(scores.Induction)),
    ]);

    public static string Scores(HeadScores scores) => Fragment("Head scores (mean attention on each detector's target)", HeadScoreMaps(scores));

    static string ScoreMap(double[,] scores)
    {
        int layers = scores.GetLength(0), heads = scores.GetLength(1);
        var grid = new float[layers, heads];
        for (int l = 0; l < layers; l++) for (int h = 0; h < heads; h++) grid[l, h] = (float)scores[l, h];
        return Svg.Heatmap(grid, [.. Enumerable.Range(0, layers).Select(i => i.ToString())], [.. Enumerable.Range(0, heads).Select(i => i.ToString())],
            "layer", "head", min: 0, max: 1, cell: 36, annotate: true);
    }

    /// <summary>The induction organism's findings: losses, head scores, loss by position, the top heads' patterns.</summary>
    public static string Induction(InductionFindings f)
    {
        var figures = Figures([("loss, random half", F(f.FirstHalfLoss)), ("loss, repeated half", F(f.RepeatedHalfLoss)),
            ("ratio", F(f.LossRatio, "0.0") + "x"), ("induction heads", f.InductionHeads.Count == 0 ? "none" : string.Join(", ", f.InductionHeads.Select(h => h.Head.ToString()))),
            ("top previous-token head", f.TopPreviousTokenHead.ToString())]);
        var x = Enumerable.Range(1, f.LossByPosition.Length).Select(i => (double)i).ToList();
        string loss = Svg.LinePlot([new Series("loss", x, f.LossByPosition, Svg.Orange)], "target position", "loss", width: 560, height: 240,
            markers: [new Marker(f.HalfLength + 0.5, "repeat starts")]);
        var patterns = f.Patterns.Select(p =>
        {
            var labels = p.Tokens.Select((t, i) => $"{i}:{t}").ToList();
            return ($"head {p.Head} pattern", Svg.Heatmap(p.Pattern, labels, labels, "query", "key", cell: p.Tokens.Length <= 24 ? 10 : 6));
        });
        return Fragment("Induction organism findings", figures + HeadScoreMaps(f.Scores) + Gallery([("loss by position", loss), .. patterns]));
    }

    /// <summary>The summary's table: where each head's attention goes on average.</summary>
    public static string Attention(AttentionSummary summary)
    {
        var (columns, cells) = summary.ToTable();
        return Fragment("Attention summary", Table(columns, cells));
    }

    /// <summary>What a cache holds: each activation's name, shape and dtype.</summary>
    public static string Cache(ActivationCache cache) =>
        Fragment($"ActivationCache: {cache.Count} activations, {F(cache.TotalBytes / 1048576.0, "0.##")} MiB",
            Table(["hook", "shape", "dtype"], cache.Keys.Select(k =>
            {
                var t = cache[k];
                return (IReadOnlyList<string>)[k, ShapeText.Of(t.shape), t.dtype.ToString().ToLowerInvariant()];
            })));
}
