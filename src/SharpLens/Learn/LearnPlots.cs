using SharpLens.Reports;
using static TorchSharp.torch;

namespace SharpLens.Learn;

/// <summary>Charts of a learner's tensors for a chapter's page (<see cref="Checker.Plot"/>): inline SVG from <see cref="Svg"/>.</summary>
public static class LearnPlots
{
    /// <summary>A heatmap of a [rows, columns] tensor, rows and columns labelled <paramref name="rowLabel"/>(i), <paramref name="columnLabel"/>(j).</summary>
    public static string Heatmap(Tensor values, Func<int, string> rowLabel, Func<int, string> columnLabel, string rowTitle, string columnTitle,
        double? min = null, double? max = null, bool annotate = false, int cell = 14)
    {
        if (values.dim() != 2) throw new SharpLensArgumentException("values", $"A heatmap needs a [rows, columns] tensor, got {Expect.Shape(values)}.");
        int rows = (int)values.shape[0], columns = (int)values.shape[1];
        var data = values.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var cells = new float[rows, columns];
        for (int r = 0; r < rows; r++) for (int c = 0; c < columns; c++) cells[r, c] = data[r * columns + c];
        double lo = min ?? data.Where(float.IsFinite).DefaultIfEmpty(0).Min(), hi = max ?? data.Where(float.IsFinite).DefaultIfEmpty(1).Max();
        return Svg.Heatmap(cells, [.. Enumerable.Range(0, rows).Select(rowLabel)], [.. Enumerable.Range(0, columns).Select(columnLabel)],
            rowTitle, columnTitle, lo, Math.Max(hi, lo + 1e-9), cell, annotate);
    }

    /// <summary>One line per named 1-D tensor (or array), over its index.</summary>
    public static string Lines(IReadOnlyList<(string Name, double[] Values)> series, string xTitle, string yTitle, double? yMin = null, IReadOnlyList<Marker>? markers = null)
    {
        string[] colors = [Svg.Blue, Svg.Orange, Svg.Green, Svg.Gray];
        return Svg.LinePlot([.. series.Select((s, i) => new Series(s.Name, [.. Enumerable.Range(0, s.Values.Length).Select(x => (double)x)], s.Values, colors[i % colors.Length]))],
            xTitle, yTitle, markers: markers, yMin: yMin);
    }

    /// <summary>The values of a tensor as doubles (flattened).</summary>
    public static double[] Values(Tensor t) => t.detach().to(ScalarType.Float64).cpu().contiguous().flatten().data<double>().ToArray();
}
