using SharpLens.Models;
using SharpLens.Techniques.Patching;

namespace SharpLens.Reports;

/// <summary>An activation-patching sweep as one self-contained HTML page.</summary>
public static class PatchingReport
{
    /// <summary>The two metric values, then the heatmap with token strings along the positions (heads for z).</summary>
    public static HtmlReport Build(HookedTransformer model, PromptPairs pairs, PatchingResult result)
    {
        var table = result.ToArray2D();
        bool byHead = result.Component == "z";
        var rows = Enumerable.Range(0, table.GetLength(0)).Select(l => l.ToString()).ToList();
        var columns = byHead ? [.. Enumerable.Range(0, table.GetLength(1)).Select(h => h.ToString())] : TokenLabels(model, pairs);
        var flat = table.Cast<float>().ToList();
        string heatmap = Svg.Heatmap(table, rows, columns, "layer", byHead ? "head" : "position",
            min: Math.Min(0, flat.Min()), max: Math.Max(1, flat.Max()), cell: 22, annotate: true);
        return new HtmlReport($"Activation patching: {result.Component}")
            .Paragraph("Each cell: the corrupted run with that one activation taken from the clean run. Metric: logit difference " +
                       "answer − wrong at the last position, normalised so 0 = corrupted and 1 = clean.", "lead")
            .Figures([("clean logit diff", result.CleanMetric.ToString("0.000")), ("corrupted logit diff", result.CorruptedMetric.ToString("0.000")),
                      ("model", model.Config.ModelName)])
            .Gallery([($"{result.Component} [{string.Join(", ", result.Dims)}]", heatmap)]);
    }

    /// <summary>"position token" for each position of the first clean prompt; "position:id" when the model has no tokenizer.</summary>
    public static IReadOnlyList<string> TokenLabels(HookedTransformer model, PromptPairs pairs)
    {
        var ids = pairs.Clean[0].data<long>().ToArray();
        try { return [.. model.ToStrTokens(pairs.Clean[0]).Select((t, i) => $"{i} {t}")]; }
        catch (MissingTokenizerException) { return [.. ids.Select((t, i) => $"{i}:{t}")]; }
    }
}
