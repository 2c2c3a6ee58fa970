using System.Globalization;
using System.Text.RegularExpressions;
using SharpLens.Reports;

namespace SharpLens.Tests.Reports;

public class SvgBarChartTests
{
    static double[] BarWidths(string svg) =>
        [.. Regex.Matches(svg, "<rect x=\"[^\"]+\" y=\"[^\"]+\" width=\"([^\"]+)\"").Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))];

    [Fact]
    public void Bars_are_proportional_on_a_linear_axis_and_to_decades_on_a_log_axis()
    {
        var linear = Svg.BarChart([("a", 1.0, Svg.Blue), ("b", 3.0, Svg.Orange)], "value");
        var w = BarWidths(linear);
        Assert.Equal(2, w.Length);
        Assert.Equal(3.0, w[1] / w[0], 2);

        // 1e-5 and 1e-1 on a log axis from 1e-5 to 1e-1: the first bar is a sliver, the second spans all four decades.
        var log = Svg.BarChart([("restricted", 1e-5, Svg.Blue), ("full", 1e-1, Svg.Orange)], "loss", logX: true);
        var lw = BarWidths(log);
        Assert.True(lw[0] <= 1.0 + 1e-9, $"the smallest value sits on the axis floor, got width {lw[0]}");
        Assert.Contains(">1e-5<", log);
        Assert.Contains(">restricted<", log);
        Assert.Contains("<title>full: 0.1</title>", log);
    }
}
