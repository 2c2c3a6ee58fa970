using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Grokking;

/// <summary>
/// The Fourier view of a modular-addition model (Nanda et al. 2023, section 4): how the embedding's norm spreads over
/// frequencies, which frequencies are key, and how much of the logits is the trig identity cos(w(a + b − c)).
/// </summary>
public static class FourierAnalysis
{
    /// <summary>A frequency is key when its squared embedding norm is at least this many times the mean over frequencies.</summary>
    public const double KeyFactor = 2;

    /// <summary>
    /// Norm of the number embeddings W_E[0…p−1] along each frequency: entry 0 the constant direction, entry k the
    /// norm of the cos k and sin k rows of F W_E together (√(‖cos‖² + ‖sin‖²)). Length (p + 1)/2.
    /// </summary>
    public static double[] EmbeddingNorms(HookedTransformer model, int p)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var basis = FourierBasis.Create(p);                                             // [p, p]
        var embedding = model.embed.W_E.detach()[..p].to(ScalarType.Float64).cpu();       // [p, d_model]
        var squared = basis.MatMul(embedding).pow(2).sum(1);                              // [p]: per basis vector
        var values = squared.data<double>().ToArray();
        var norms = new double[FourierBasis.Frequencies(p) + 1];
        norms[0] = Math.Sqrt(values[0]);
        for (int k = 1; k < norms.Length; k++) norms[k] = Math.Sqrt(values[2 * k - 1] + values[2 * k]);
        return norms;
    }

    /// <summary>Frequencies k ≥ 1 whose squared norm is at least <paramref name="factor"/> × the mean over k ≥ 1, ascending.</summary>
    public static int[] KeyFrequencies(IReadOnlyList<double> norms, double factor = KeyFactor)
    {
        double mean = Enumerable.Range(1, norms.Count - 1).Average(k => norms[k] * norms[k]);
        return [.. Enumerable.Range(1, norms.Count - 1).Where(k => norms[k] * norms[k] >= factor * mean)];
    }

    /// <summary>Share of the squared norm over frequencies k ≥ 1 that the given frequencies hold.</summary>
    public static double NormShare(IReadOnlyList<double> norms, IEnumerable<int> frequencies)
    {
        double total = Enumerable.Range(1, norms.Count - 1).Sum(k => norms[k] * norms[k]);
        return frequencies.Sum(k => norms[k] * norms[k]) / total;
    }

    /// <summary>The Gini coefficient of the per-frequency norms (k ≥ 1): near 0 when spread out, near 1 when sparse.</summary>
    public static double FrequencyGini(IReadOnlyList<double> norms) => Gini.Of([.. norms.Skip(1)]);

    /// <summary>
    /// Orthonormal directions over the p² inputs (row a·p + b): cos(w_k(a + b)) and sin(w_k(a + b)) for each key
    /// frequency, [p², 2·keys] in float64. They are orthogonal to the constant and to each other.
    /// </summary>
    public static Tensor SumDirections(int p, IReadOnlyList<int> keys)
    {
        using var scope = NewDisposeScope();
        var a = arange(p, dtype: ScalarType.Float64).repeat_interleave(p); // [p²]
        var b = arange(p, dtype: ScalarType.Float64).repeat(p);            // [p²]
        var columns = new List<Tensor>();
        foreach (int k in keys)
        {
            var angle = (a + b) * FourierBasis.Omega(k, p);
            columns.Add(angle.cos());
            columns.Add(angle.sin());
        }
        if (columns.Count == 0) return zeros(p * p, 0, dtype: ScalarType.Float64).MoveToOuterDisposeScope();
        var directions = stack(columns, 1); // [p², 2·keys]
        return (directions / directions.norm(0, keepdim: true)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Logits [p², p] kept only along the key frequencies: each answer's logit, as a function of the input (a, b), is
    /// replaced by its mean plus its projection on cos/sin(w_k(a + b)) for the key k. This is the paper's restricted model.
    /// </summary>
    public static Tensor RestrictedLogits(Tensor logits, int p, IReadOnlyList<int> keys)
    {
        using var scope = NewDisposeScope();
        var directions = SumDirections(p, keys);                 // [p², 2·keys]
        var centred = logits - logits.mean([0], keepdim: true);  // [p², p]
        var projected = directions.MatMul(directions.t().MatMul(centred)); // [p², p]
        return (logits.mean([0], keepdim: true) + projected).MoveToOuterDisposeScope();
    }

    /// <summary>Logits [p², p] with the key frequencies' cos/sin(w_k(a + b)) components removed: the paper's excluded model.</summary>
    public static Tensor ExcludedLogits(Tensor logits, int p, IReadOnlyList<int> keys)
    {
        using var scope = NewDisposeScope();
        var directions = SumDirections(p, keys);
        return (logits - directions.MatMul(directions.t().MatMul(logits))).MoveToOuterDisposeScope(); // [p², p]
    }

    /// <summary>
    /// Fits the logits [p², p] (each row centred, since softmax ignores a shift) by Σ_k α_k cos(w_k(a + b − c)) over the
    /// key frequencies. Returns each α_k and the share of the centred logits' variance the fit explains. The cosines of
    /// different frequencies are orthogonal over the p³ triples, so each α_k is a projection.
    /// </summary>
    public static (double[] Coefficients, double Explained) CosineFit(Tensor logits, int p, IReadOnlyList<int> keys)
    {
        using var scope = NewDisposeScope();
        var centred = logits.to(ScalarType.Float64) - logits.to(ScalarType.Float64).mean([1], keepdim: true); // [p², p]
        var a = arange(p, dtype: ScalarType.Float64).repeat_interleave(p).unsqueeze(1); // [p², 1]
        var b = arange(p, dtype: ScalarType.Float64).repeat(p).unsqueeze(1);            // [p², 1]
        var c = arange(p, dtype: ScalarType.Float64).unsqueeze(0);                      // [1, p]
        var coefficients = new double[keys.Count];
        double explained = 0, total = centred.pow(2).sum().item<double>();
        for (int i = 0; i < keys.Count; i++)
        {
            var wave = ((a + b - c) * FourierBasis.Omega(keys[i], p)).cos(); // [p², p]
            double dot = (wave * centred).sum().item<double>(), norm2 = wave.pow(2).sum().item<double>();
            coefficients[i] = dot / norm2;
            explained += dot * dot / norm2;
        }
        return (coefficients, total == 0 ? 0 : explained / total);
    }
}
