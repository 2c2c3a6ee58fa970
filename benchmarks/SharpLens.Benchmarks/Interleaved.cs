using System.Diagnostics;
using System.Globalization;

namespace SharpLens.Benchmarks;

/// <summary>
/// The configurations a benchmark compares, timed interleaved: every round runs each one once (A B C, then B C A, …),
/// so a slow spell of a shared machine lands on all of them in the same round and cancels out of the per-round
/// ratios. A comparison is the median of those ratios, with their min–max beside it.
/// </summary>
public sealed class Interleaved
{
    readonly Dictionary<string, List<double>> _seconds = [];

    public int Rounds { get; }

    Interleaved(int rounds) => Rounds = rounds;

    /// <summary>
    /// Runs each variant once to warm it up, then <paramref name="rounds"/> rounds of every variant once, in an order that
    /// rotates from round to round (so no variant always follows the same one).
    /// </summary>
    public static Interleaved Measure(IReadOnlyList<(string Name, Action Run)> variants, int rounds, TextWriter? progress = null, bool warmUp = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        var timings = new Interleaved(rounds);
        foreach (var (name, run) in variants)
        {
            if (warmUp) run(); // first calls allocate and pick kernels
            timings._seconds[name] = [];
        }
        for (int round = 0; round < rounds; round++)
        {
            for (int i = 0; i < variants.Count; i++)
            {
                var (name, run) = variants[(i + round) % variants.Count];
                var clock = Stopwatch.StartNew();
                run();
                timings._seconds[name].Add(clock.Elapsed.TotalSeconds);
            }
            progress?.WriteLine($"round {round + 1}/{rounds}: " +
                string.Join(", ", variants.Select(v => $"{v.Name} {timings._seconds[v.Name][^1].ToString("F3", CultureInfo.InvariantCulture)}s")));
        }
        return timings;
    }

    /// <summary>The seconds of <paramref name="name"/> in each round.</summary>
    public IReadOnlyList<double> Seconds(string name) => _seconds[name];

    /// <summary>The median of <paramref name="name"/>'s round times.</summary>
    public double MedianSeconds(string name) => Spread.Of(_seconds[name]).Median;

    /// <summary>time(<paramref name="numerator"/>) / time(<paramref name="denominator"/>) in each round: median, min and max.</summary>
    public Spread TimeRatio(string numerator, string denominator) =>
        Spread.Of(_seconds[numerator].Zip(_seconds[denominator], (a, b) => a / b));

    /// <summary>Per-round ratios of <paramref name="numerator"/>(seconds of that round) to a variant's time.</summary>
    public Spread Ratio(Func<int, double> numerator, string denominator) =>
        Spread.Of(_seconds[denominator].Select((b, round) => numerator(round) / b));
}

/// <summary>The median of a set of per-round values with its min and max (what a reader needs to trust the median).</summary>
public sealed record Spread(double Median, double Min, double Max)
{
    public static Spread Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return new Spread(double.NaN, double.NaN, double.NaN);
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        return new Spread(median, sorted[0], sorted[^1]);
    }

    /// <summary>"1.023 (0.991–1.050)".</summary>
    public string Format(string format = "F3") =>
        $"{Median.ToString(format, CultureInfo.InvariantCulture)} ({Min.ToString(format, CultureInfo.InvariantCulture)}–{Max.ToString(format, CultureInfo.InvariantCulture)})";

    public override string ToString() => Format();
}
