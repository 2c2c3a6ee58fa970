using System.Globalization;
using System.Net;
using System.Text;

namespace SharpLens.Reports;

/// <summary>One line of a line plot.</summary>
public sealed record Series(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y, string Color);

/// <summary>A vertical marker on a line plot, e.g. where the repeated half starts.</summary>
public sealed record Marker(double X, string Label);

/// <summary>Inline SVG charts (line plots, bar charts and heatmaps) that need no script, font or file from outside the page.</summary>
public static class Svg
{
    public const string Blue = "#2563eb", Orange = "#ea580c", Green = "#16a34a", Gray = "#6b7280";

    static string F(double v)
    {
        string s = v.ToString("0.##", CultureInfo.InvariantCulture);
        return s == "-0" ? "0" : s; // a tick at a tiny negative round-off prints as 0, not "-0"
    }
    static string E(string s) => WebUtility.HtmlEncode(s);

    /// <summary>A line plot with axes, ticks, axis titles, a legend, optional vertical markers and an optional log-scale y axis.</summary>
    public static string LinePlot(IReadOnlyList<Series> series, string xTitle, string yTitle, int width = 720, int height = 300,
        IReadOnlyList<Marker>? markers = null, double? yMin = null, bool logY = false)
    {
        const int left = 56, right = 16, top = 30, bottom = 44;
        // On a log axis the plot works in log10 units, ticks sit on whole decades, and values ≤ 0 are left out.
        if (logY) series = [.. series.Select(s => s with { Y = [.. s.Y.Select(y => y > 0 ? Math.Log10(y) : double.NaN)] })];
        var xs = series.SelectMany(s => s.X).ToList();
        var ys = series.SelectMany(s => s.Y).Where(double.IsFinite).ToList();
        double x0 = xs.Min(), x1 = Math.Max(xs.Max(), x0 + 1e-9);
        double y0 = logY ? Math.Floor(ys.Min()) : yMin ?? Math.Min(0, ys.Min());
        double y1 = logY ? Math.Max(Math.Ceiling(ys.Max()), y0 + 1) : Math.Max(ys.Max(), y0 + 1e-9);
        double plotW = width - left - right, plotH = height - top - bottom;
        double Px(double x) => left + (x - x0) / (x1 - x0) * plotW;
        double Py(double y) => top + (1 - (y - y0) / (y1 - y0)) * plotH;

        var svg = new StringBuilder();
        svg.Append($"<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\">");
        var yTicks = logY ? Enumerable.Range((int)y0, (int)(y1 - y0) + 1).Select(d => (double)d).Where((_, i) => i % Math.Max(1, (int)Math.Ceiling((y1 - y0) / 8)) == 0)
            : NiceTicks(y0, y1, 5);
        foreach (double t in yTicks)
        {
            string label = logY ? (t >= -2 && t <= 3 ? F(Math.Pow(10, t)) : $"1e{t:0}") : F(t);
            svg.Append($"<line x1=\"{left}\" x2=\"{F(left + plotW)}\" y1=\"{F(Py(t))}\" y2=\"{F(Py(t))}\" class=\"grid\"/>");
            svg.Append($"<text x=\"{left - 6}\" y=\"{F(Py(t) + 4)}\" text-anchor=\"end\" class=\"tick\">{label}</text>");
        }
        foreach (double t in NiceTicks(x0, x1, 8))
            svg.Append($"<text x=\"{F(Px(t))}\" y=\"{F(top + plotH + 16)}\" text-anchor=\"middle\" class=\"tick\">{F(t)}</text>");
        svg.Append($"<line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{F(top + plotH)}\" class=\"axis\"/>");
        svg.Append($"<line x1=\"{left}\" x2=\"{F(left + plotW)}\" y1=\"{F(top + plotH)}\" y2=\"{F(top + plotH)}\" class=\"axis\"/>");
        foreach (var m in markers ?? [])
        {
            svg.Append($"<line x1=\"{F(Px(m.X))}\" x2=\"{F(Px(m.X))}\" y1=\"{top}\" y2=\"{F(top + plotH)}\" class=\"marker\"/>");
            svg.Append($"<text x=\"{F(Px(m.X) + 4)}\" y=\"{F(top + plotH - 6)}\" class=\"tick\">{E(m.Label)}</text>");
        }
        foreach (var s in series)
        {
            var points = string.Join(" ", s.X.Zip(s.Y).Where(p => double.IsFinite(p.Second)).Select(p => $"{F(Px(p.First))},{F(Py(p.Second))}"));
            svg.Append($"<polyline points=\"{points}\" fill=\"none\" stroke=\"{s.Color}\" stroke-width=\"1.8\"/>");
        }
        // The legend sits in the top margin, in a row, so it never covers a line.
        double lx = left;
        foreach (var s in series)
        {
            svg.Append($"<rect x=\"{F(lx)}\" y=\"10\" width=\"14\" height=\"4\" fill=\"{s.Color}\"/>");
            svg.Append($"<text x=\"{F(lx + 20)}\" y=\"16\" class=\"legend\">{E(s.Name)}</text>");
            lx += 40 + 7 * s.Name.Length;
        }
        svg.Append($"<text x=\"{F(left + plotW / 2)}\" y=\"{height - 6}\" text-anchor=\"middle\" class=\"title\">{E(xTitle)}</text>");
        svg.Append($"<text transform=\"translate(14 {F(top + plotH / 2)}) rotate(-90)\" text-anchor=\"middle\" class=\"title\">{E(yTitle)}</text>");
        svg.Append("</svg>");
        return svg.ToString();
    }

    /// <summary>
    /// Horizontal bars, one per (label, value), each labelled with its value; on a log axis (<paramref name="logX"/>)
    /// a bar runs from the decade below the smallest value, so values orders of magnitude apart stay comparable.
    /// </summary>
    public static string BarChart(IReadOnlyList<(string Label, double Value, string Color)> bars, string valueTitle,
        int width = 480, bool logX = false)
    {
        const int barH = 22, gap = 10, top = 10, bottom = 40;
        int left = 16 + 7 * Math.Max(2, bars.Select(b => b.Label.Length).DefaultIfEmpty(0).Max()), right = 90;
        int height = top + bars.Count * (barH + gap) + bottom;
        double Scale(double v) => logX ? (v > 0 ? Math.Log10(v) : double.NaN) : v;
        var scaled = bars.Select(b => Scale(b.Value)).Where(double.IsFinite).DefaultIfEmpty(0).ToList();
        double x0 = logX ? Math.Floor(scaled.Min()) : Math.Min(0, scaled.Min());
        double x1 = logX ? Math.Max(Math.Ceiling(scaled.Max()), x0 + 1) : Math.Max(scaled.Max(), x0 + 1e-9);
        double plotW = width - left - right;
        double Px(double x) => left + (x - x0) / (x1 - x0) * plotW;

        var svg = new StringBuilder();
        svg.Append($"<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\">");
        double axisY = top + bars.Count * (barH + gap);
        var ticks = logX ? Enumerable.Range((int)x0, (int)(x1 - x0) + 1).Select(d => (double)d).Where((_, i) => i % Math.Max(1, (int)Math.Ceiling((x1 - x0) / 6)) == 0)
            : NiceTicks(x0, x1, 5);
        foreach (double t in ticks)
        {
            string label = logX ? (t >= -2 && t <= 3 ? F(Math.Pow(10, t)) : $"1e{t:0}") : F(t);
            svg.Append($"<line x1=\"{F(Px(t))}\" x2=\"{F(Px(t))}\" y1=\"{top}\" y2=\"{F(axisY)}\" class=\"grid\"/>");
            svg.Append($"<text x=\"{F(Px(t))}\" y=\"{F(axisY + 16)}\" text-anchor=\"middle\" class=\"tick\">{label}</text>");
        }
        for (int i = 0; i < bars.Count; i++)
        {
            var (name, value, color) = bars[i];
            double y = top + i * (barH + gap), v = Scale(value), end = double.IsFinite(v) ? Px(v) : Px(x0);
            svg.Append($"<text x=\"{left - 6}\" y=\"{F(y + barH * 0.65)}\" text-anchor=\"end\" class=\"legend\">{E(name)}</text>");
            svg.Append($"<rect x=\"{F(Px(x0))}\" y=\"{F(y)}\" width=\"{F(Math.Max(1, end - Px(x0)))}\" height=\"{barH}\" fill=\"{color}\">" +
                       $"<title>{E(name)}: {value.ToString("g4", CultureInfo.InvariantCulture)}</title></rect>");
            svg.Append($"<text x=\"{F(end + 6)}\" y=\"{F(y + barH * 0.65)}\" class=\"tick\">{value.ToString("g3", CultureInfo.InvariantCulture)}</text>");
        }
        svg.Append($"<line x1=\"{F(Px(x0))}\" x2=\"{F(Px(x0))}\" y1=\"{top}\" y2=\"{F(axisY)}\" class=\"axis\"/>");
        svg.Append($"<text x=\"{F(left + plotW / 2)}\" y=\"{height - 6}\" text-anchor=\"middle\" class=\"title\">{E(valueTitle)}</text>");
        svg.Append("</svg>");
        return svg.ToString();
    }

    /// <summary>
    /// A heatmap of <paramref name="values"/> [row, column] on a white-to-blue scale from <paramref name="min"/> to
    /// <paramref name="max"/>; each cell has a tooltip, and <paramref name="annotate"/> prints values in the cells.
    /// </summary>
    public static string Heatmap(float[,] values, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels,
        string rowTitle, string columnTitle, double min = 0, double max = 1, int cell = 14, bool annotate = false)
    {
        int rows = values.GetLength(0), cols = values.GetLength(1);
        double font = Math.Min(10, cell - 1); // small cells get small labels, so every label stays legible
        int labelW = (int)(8 + 0.65 * font * Math.Max(rowLabels.DefaultIfEmpty("").Max(l => l.Length), 2)) + 18;
        int labelH = (int)(8 + 0.65 * font * Math.Max(columnLabels.DefaultIfEmpty("").Max(l => l.Length), 2)) + 18;
        int width = labelW + cols * cell + 8, height = labelH + rows * cell + 8;
        var svg = new StringBuilder();
        svg.Append($"<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\">");
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                double v = values[r, c], t = Math.Clamp((v - min) / Math.Max(max - min, 1e-12), 0, 1);
                svg.Append($"<rect x=\"{labelW + c * cell}\" y=\"{labelH + r * cell}\" width=\"{cell}\" height=\"{cell}\" fill=\"{Color(t)}\">" +
                           $"<title>{E(rowLabels[r])} → {E(columnLabels[c])}: {v.ToString("0.000", CultureInfo.InvariantCulture)}</title></rect>");
                if (annotate)
                    svg.Append($"<text x=\"{F(labelW + (c + 0.5) * cell)}\" y=\"{F(labelH + (r + 0.5) * cell + 4)}\" text-anchor=\"middle\" " +
                               $"class=\"cell\" fill=\"{(t > 0.55 ? "#fff" : "#111")}\">{v.ToString("0.00", CultureInfo.InvariantCulture)}</text>");
            }
        for (int r = 0; r < rows; r++)
            svg.Append($"<text x=\"{labelW - 4}\" y=\"{F(labelH + (r + 0.5) * cell + font * 0.35)}\" text-anchor=\"end\" class=\"tick\" font-size=\"{F(font)}\">{E(rowLabels[r])}</text>");
        for (int c = 0; c < cols; c++)
        {
            double x = labelW + (c + 0.5) * cell + font * 0.35, y = labelH - 4;
            svg.Append($"<text transform=\"translate({F(x)} {F(y)}) rotate(-90)\" class=\"tick\" font-size=\"{F(font)}\">{E(columnLabels[c])}</text>");
        }
        svg.Append($"<text x=\"4\" y=\"12\" class=\"title\">{E(rowTitle)} ↓  {E(columnTitle)} →</text>");
        svg.Append("</svg>");
        return svg.ToString();
    }

    /// <summary>White (0) to deep blue (1).</summary>
    static string Color(double t)
    {
        int r = (int)Math.Round(255 + (30 - 255) * t), g = (int)Math.Round(255 + (64 - 255) * t), b = (int)Math.Round(255 + (175 - 255) * t);
        return $"#{r:x2}{g:x2}{b:x2}";
    }

    /// <summary>About <paramref name="count"/> round tick values covering [lo, hi].</summary>
    static IEnumerable<double> NiceTicks(double lo, double hi, int count)
    {
        double raw = (hi - lo) / count, magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1, 2, 2.5, 5, 10 }.Select(m => m * magnitude).First(s => s >= raw);
        for (double t = Math.Ceiling(lo / step) * step; t <= hi + step * 1e-9; t += step) yield return Math.Round(t, 10);
    }
}
