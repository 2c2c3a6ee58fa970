using ScottPlot;

namespace SharpLens.Plots;

/// <summary>
/// PNG / SVG plot files (ScottPlot with SkiaSharp): heatmaps for sweeps, line plots for lenses. The format follows the
/// file's extension (.png or .svg); files are written to a temporary name and renamed, so none is left half-written.
/// </summary>
public static class PlotFiles
{
    /// <summary>A heatmap of <paramref name="values"/> [row, column]; row 0 at the top, as in a table. Diverging colours when values go negative.</summary>
    public static void Heatmap(string path, float[,] values, string title, string rowTitle, string columnTitle,
        IReadOnlyList<string>? rowLabels = null, IReadOnlyList<string>? columnLabels = null, int width = 800, int height = 500)
    {
        int rows = values.GetLength(0), cols = values.GetLength(1);
        var data = new double[rows, cols];
        double min = double.MaxValue, max = double.MinValue;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) { data[r, c] = values[r, c]; min = Math.Min(min, data[r, c]); max = Math.Max(max, data[r, c]); }

        var plot = new Plot();
        var map = plot.Add.Heatmap(data);
        map.FlipVertically = true; // row 0 at the top, as in a table
        map.Extent = new CoordinateRect(-0.5, cols - 0.5, rows - 0.5, -0.5);
        if (min < 0)
        {
            double bound = Math.Max(Math.Abs(min), Math.Abs(max));
            map.Colormap = new ScottPlot.Colormaps.Balance();
            map.ManualRange = new ScottPlot.Range(-bound, bound);
        }
        plot.Add.ColorBar(map);
        plot.Axes.SetLimits(-0.5, cols - 0.5, rows - 0.5, -0.5);
        plot.Axes.Bottom.TickGenerator = Ticks(columnLabels, cols);
        plot.Axes.Left.TickGenerator = Ticks(rowLabels, rows);
        plot.Title(title);
        plot.XLabel(columnTitle);
        plot.YLabel(rowTitle);
        Save(plot, path, width, height);
    }

    /// <summary>One line per series over x = 0, 1, 2, ... (e.g. a token's rank by layer in a logit lens).</summary>
    public static void LinePlot(string path, IReadOnlyList<(string Name, double[] Values)> series, string title, string xTitle, string yTitle,
        IReadOnlyList<string>? xLabels = null, int width = 800, int height = 400)
    {
        var plot = new Plot();
        foreach (var (name, values) in series)
        {
            var line = plot.Add.Scatter(Enumerable.Range(0, values.Length).Select(i => (double)i).ToArray(), values);
            line.LegendText = name;
        }
        if (xLabels is not null) plot.Axes.Bottom.TickGenerator = Ticks(xLabels, xLabels.Count);
        if (series.Count > 1) plot.ShowLegend();
        plot.Title(title);
        plot.XLabel(xTitle);
        plot.YLabel(yTitle);
        Save(plot, path, width, height);
    }

    static ScottPlot.TickGenerators.NumericManual Ticks(IReadOnlyList<string>? labels, int count)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        int step = Math.Max(1, count / 24); // keep long axes legible
        for (int i = 0; i < count; i += step) ticks.AddMajor(i, labels is null ? i.ToString() : labels[i]);
        return ticks;
    }

    static void Save(Plot plot, string path, int width, int height)
    {
        string extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension is not (".png" or ".svg"))
            throw new ArgumentException($"Plot file '{path}' must end in .png or .svg.", nameof(path));
        IO.AtomicFile.WriteVia(path, temporary =>
        {
            if (extension == ".png") plot.SavePng(temporary, width, height);
            else plot.SaveSvg(temporary, width, height);
        }, keepExtension: true);
    }
}
