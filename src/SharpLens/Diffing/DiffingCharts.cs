using System.Globalization;
using System.Net;
using System.Text;

namespace SharpLens.Diffing;

/// <summary>Inline SVG charts of the diffing report: a histogram with a log or linear count axis, and a scatter plot.</summary>
public static class DiffingCharts
{
    static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
    static string E(string s) => WebUtility.HtmlEncode(s);

    /// <summary>Counts of <paramref name="values"/> in <paramref name="bins"/> equal bins over [lo, hi] (values outside are clamped into the end bins).</summary>
    public static int[] Bin(IEnumerable<double> values, int bins, double lo, double hi)
    {
        var counts = new int[bins];
        foreach (double v in values.Where(double.IsFinite))
            counts[Math.Clamp((int)Math.Floor((v - lo) / (hi - lo) * bins), 0, bins - 1)]++;
        return counts;
    }

    public static string Histogram(int[] counts, double lo, double hi, string xTitle, string yTitle, bool logCounts = true, int width = 560, int height = 260, string color = "#2563eb")
    {
        const int left = 50, right = 12, top = 14, bottom = 42;
        double plotW = width - left - right, plotH = height - top - bottom;
        double Scale(int c) => logCounts ? Math.Log10(1 + c) : c;
        double max = Math.Max(1e-9, counts.Select(Scale).DefaultIfEmpty(0).Max());
        var svg = new StringBuilder($"<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\">");
        double barW = plotW / counts.Length;
        for (int i = 0; i < counts.Length; i++)
        {
            double h = Scale(counts[i]) / max * plotH;
            double binLo = lo + (hi - lo) * i / counts.Length, binHi = lo + (hi - lo) * (i + 1) / counts.Length;
            svg.Append($"<rect x=\"{F(left + i * barW + 0.5)}\" y=\"{F(top + plotH - h)}\" width=\"{F(Math.Max(0.5, barW - 1))}\" height=\"{F(h)}\" fill=\"{color}\">" +
                       $"<title>{F(binLo)}–{F(binHi)}: {counts[i]}</title></rect>");
        }
        svg.Append($"<line x1=\"{left}\" x2=\"{F(left + plotW)}\" y1=\"{F(top + plotH)}\" y2=\"{F(top + plotH)}\" class=\"axis\"/>");
        svg.Append($"<line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{F(top + plotH)}\" class=\"axis\"/>");
        for (int t = 0; t <= 4; t++)
        {
            double x = lo + (hi - lo) * t / 4;
            svg.Append($"<text x=\"{F(left + plotW * t / 4)}\" y=\"{F(top + plotH + 15)}\" text-anchor=\"middle\" class=\"tick\">{F(x)}</text>");
        }
        foreach (int c in logCounts ? new[] { 1, 10, 100, 1000, 10000, 100000 } : [0, (int)max / 2, (int)max])
        {
            double y = Scale(c);
            if (y > max * 1.0001) break;
            svg.Append($"<text x=\"{left - 6}\" y=\"{F(top + plotH - y / max * plotH + 4)}\" text-anchor=\"end\" class=\"tick\">{c}</text>");
        }
        svg.Append($"<text x=\"{F(left + plotW / 2)}\" y=\"{height - 6}\" text-anchor=\"middle\" class=\"title\">{E(xTitle)}</text>");
        svg.Append($"<text transform=\"translate(13 {F(top + plotH / 2)}) rotate(-90)\" text-anchor=\"middle\" class=\"title\">{E(yTitle)}</text>");
        return svg.Append("</svg>").ToString();
    }

    /// <summary>Points (x, y, colour, tooltip) on linear axes over the given ranges (points outside are drawn at the edge).</summary>
    public static string Scatter(IReadOnlyList<(double X, double Y, string Color, string Label)> points, double x0, double x1, double y0, double y1,
        string xTitle, string yTitle, int width = 560, int height = 300)
    {
        const int left = 50, right = 12, top = 14, bottom = 42;
        double plotW = width - left - right, plotH = height - top - bottom;
        double Px(double x) => left + (Math.Clamp(x, x0, x1) - x0) / (x1 - x0) * plotW;
        double Py(double y) => top + (1 - (Math.Clamp(y, y0, y1) - y0) / (y1 - y0)) * plotH;
        var svg = new StringBuilder($"<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\">");
        svg.Append($"<line x1=\"{left}\" x2=\"{F(left + plotW)}\" y1=\"{F(top + plotH)}\" y2=\"{F(top + plotH)}\" class=\"axis\"/>");
        svg.Append($"<line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{F(top + plotH)}\" class=\"axis\"/>");
        for (int t = 0; t <= 4; t++)
        {
            svg.Append($"<text x=\"{F(left + plotW * t / 4)}\" y=\"{F(top + plotH + 15)}\" text-anchor=\"middle\" class=\"tick\">{F(x0 + (x1 - x0) * t / 4)}</text>");
            svg.Append($"<text x=\"{left - 6}\" y=\"{F(top + plotH * (1 - t / 4.0) + 4)}\" text-anchor=\"end\" class=\"tick\">{F(y0 + (y1 - y0) * t / 4)}</text>");
        }
        foreach (var (x, y, color, label) in points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)))
            svg.Append($"<circle cx=\"{F(Px(x))}\" cy=\"{F(Py(y))}\" r=\"3.5\" fill=\"{color}\" fill-opacity=\"0.75\"><title>{E(label)}</title></circle>");
        svg.Append($"<text x=\"{F(left + plotW / 2)}\" y=\"{height - 6}\" text-anchor=\"middle\" class=\"title\">{E(xTitle)}</text>");
        svg.Append($"<text transform=\"translate(13 {F(top + plotH / 2)}) rotate(-90)\" text-anchor=\"middle\" class=\"title\">{E(yTitle)}</text>");
        return svg.Append("</svg>").ToString();
    }
}
