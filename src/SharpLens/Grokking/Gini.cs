namespace SharpLens.Grokking;

/// <summary>The Gini coefficient of non-negative numbers: 0 when all are equal, (n − 1)/n when one holds everything.</summary>
public static class Gini
{
    public static double Of(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("The Gini coefficient needs at least one value.", nameof(values));
        if (values.Any(v => v < 0 || !double.IsFinite(v))) throw new ArgumentException("The Gini coefficient is defined here for finite, non-negative values.", nameof(values));
        var sorted = values.OrderBy(v => v).ToArray();
        double total = sorted.Sum();
        if (total == 0) return 0;
        int n = sorted.Length;
        // G = Σᵢ (2i − n − 1) xᵢ / (n Σ x), with the xᵢ ascending and i from 1.
        double weighted = 0;
        for (int i = 0; i < n; i++) weighted += (2.0 * (i + 1) - n - 1) * sorted[i];
        return weighted / (n * total);
    }
}
