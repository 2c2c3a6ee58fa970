using static TorchSharp.torch;

namespace SharpLens.Techniques.MaxActivating;

/// <summary>
/// A histogram with fixed, equal-width bins over [Min, Max], filled as values stream past: memory is one count per bin.
/// Values below Min or above Max are counted in <see cref="Underflow"/> / <see cref="Overflow"/>, not dropped; Max itself
/// falls in the last bin.
/// </summary>
public sealed class ActivationHistogram
{
    public double Min { get; }
    public double Max { get; }
    public long[] Counts { get; }
    public long Underflow { get; private set; }
    public long Overflow { get; private set; }
    /// <summary>Every value added, in range or not.</summary>
    public long Count { get; private set; }
    public double Sum { get; private set; }
    public double SeenMin { get; private set; } = double.PositiveInfinity;
    public double SeenMax { get; private set; } = double.NegativeInfinity;

    public ActivationHistogram(double min, double max, int bins)
    {
        if (!(max > min) || double.IsInfinity(min) || double.IsInfinity(max))
            throw new ArgumentException($"Histogram range must be finite with max > min; got [{min}, {max}].", nameof(max));
        if (bins < 1) throw new ArgumentOutOfRangeException(nameof(bins), bins, "A histogram needs at least one bin.");
        (Min, Max, Counts) = (min, max, new long[bins]);
    }

    public int Bins => Counts.Length;
    public double BinWidth => (Max - Min) / Bins;
    /// <summary>Lower edge of bin <paramref name="bin"/>; bin i covers [edge(i), edge(i + 1)).</summary>
    public double Edge(int bin) => Min + bin * BinWidth;
    public double Mean => Count == 0 ? double.NaN : Sum / Count;

    /// <summary>Adds every element of <paramref name="values"/> (any shape).</summary>
    public void Add(Tensor values)
    {
        using var scope = NewDisposeScope();
        var v = values.detach().flatten().to(ScalarType.Float64).cpu(); // [n]
        if (v.shape[0] == 0) return;
        Count += v.shape[0];
        Sum += v.sum().item<double>();
        SeenMin = Math.Min(SeenMin, v.min().item<double>());
        SeenMax = Math.Max(SeenMax, v.max().item<double>());
        Underflow += (v < Min).sum().item<long>();
        Overflow += (v > Max).sum().item<long>();
        var inside = v[(v >= Min) & (v <= Max)];
        if (inside.shape[0] == 0) return;
        var bin = ((inside - Min) / BinWidth).floor().clamp(0, Bins - 1).to(ScalarType.Int64); // [n_inside]
        var counts = bin.bincount(null, Bins).data<long>().ToArray();
        for (int i = 0; i < Bins; i++) Counts[i] += counts[i];
    }
}
