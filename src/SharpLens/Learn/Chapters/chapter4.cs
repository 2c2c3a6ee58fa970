//:header
// Chapter 4 — Grokking: the Fourier circuit of modular addition
//
// A 1-layer transformer trained on (a + b) mod p first memorises its training pairs, then — long after — generalises
// ("groks"). Nanda et al. (2023, "Progress measures for grokking via mechanistic interpretability") found what it
// learns: it embeds each number as waves cos(w_k a), sin(w_k a) at a few key frequencies w_k = 2πk/p, combines them
// into cos(w_k(a + b)) with trig identities, and reads the answer c off cos(w_k(a + b − c)). You write the Fourier
// tools that show this, on the fast variant of their model (p = 31, `sharplens grokking --fast`; trained once on the
// first check, about half a minute, then cached): the Fourier basis, the 2-D transform, the embedding's norm per
// frequency, the key frequencies, and the paper's restricted and excluded logits.
//
//     dotnet run chapter4.cs               (checks every exercise; writes chapter4.html with your plots)
//     sharplens learn check chapter4.cs    (the same checks, without a build)
//
// Inputs (a, b) are in the order a·p + b: the model's logits for every pair are [p², p] (one column per answer c).
// Work in float64 (ScalarType.Float64), as SharpLens's Fourier analysis does. Multiply with x.MatMul(y) (SharpLens's
// checked matmul), not TorchSharp's x.matmul(y): on a shape mismatch TorchSharp's matmul ends the whole program.

using SharpLens;
using SharpLens.Learn;
using TorchSharp;
using static TorchSharp.torch;

return Chapter4.Check(args, new Chapter4.Exercises
{
    FourierBasis = Exercises.FourierBasis,
    Fourier2D = Exercises.Fourier2D,
    EmbeddingNorms = Exercises.EmbeddingNorms,
    KeyFrequencies = Exercises.KeyFrequencies,
    RestrictedLogits = Exercises.RestrictedLogits,
    ExcludedLogits = Exercises.ExcludedLogits,
});

static class Exercises
{
    // ── 1. FourierBasis ──────────────────────────────────────────────────────────────────────────────────────────
    // The real Fourier basis of functions on Z_p (p odd), as a [p, p] float64 matrix F whose column x is the input:
    // row 0 is the constant 1/√p; for k = 1 … (p − 1)/2, row 2k − 1 is cos(2πkx/p)·√(2/p) and row 2k is
    // sin(2πkx/p)·√(2/p). The rows are orthonormal (F Fᵀ = I), so F f is the list of f's Fourier coefficients.
    // Hint: fill a double[p, p] and return torch.tensor(it) (float64).
    public static Tensor FourierBasis(int p)
    {
        //> solution
        var F = new double[p, p];
        double scale = Math.Sqrt(2.0 / p);
        for (int x = 0; x < p; x++)
        {
            F[0, x] = 1 / Math.Sqrt(p);
            for (int k = 1; k <= p / 2; k++)
            {
                double angle = 2 * Math.PI * k * x / p;
                F[2 * k - 1, x] = Math.Cos(angle) * scale;
                F[2 * k, x] = Math.Sin(angle) * scale;
            }
        }
        return torch.tensor(F);                                              // [p, p] float64
        //< solution
    }

    // ── 2. Fourier2D ─────────────────────────────────────────────────────────────────────────────────────────────
    // A function of two inputs, f [p, p] with f[a, b], has a 2-D Fourier transform: transform a (the rows) with F f,
    // and b (the columns) with f Fᵀ — together F f Fᵀ. Entry [i, j] is the coefficient of basis vector i of a times
    // basis vector j of b. The check feeds it the model's logit of answer 0 as [a, b]: see how sparse it is.
    public static Tensor Fourier2D(Tensor f, Tensor F)
    {
        //> solution
        return F.MatMul(f).MatMul(F.t());                                    // [p, p]
        //< solution
    }

    // ── 3. EmbeddingNorms ────────────────────────────────────────────────────────────────────────────────────────
    // The number embeddings are rows 0 … p − 1 of W_E [d_vocab, d_model] (row p is the "=" token: leave it out). In the
    // Fourier basis, F W_E[..p] [p, d_model] has one row per basis vector. Return the norm along each frequency:
    // entry 0 the constant row's norm, entry k ≥ 1 the cos k and sin k rows together, √(‖row 2k − 1‖² + ‖row 2k‖²).
    // Length (p + 1)/2, float64. Use your FourierBasis.
    public static Tensor EmbeddingNorms(Tensor W_E, int p)
    {
        //> solution
        var coefficients = FourierBasis(p).MatMul(W_E[..p].to(ScalarType.Float64)); // [p, d_model]
        var squared = coefficients.pow(2).sum(1);                                    // [p]: per basis vector
        var perFrequency = new List<Tensor> { squared[0] };
        for (int k = 1; k <= p / 2; k++) perFrequency.Add(squared[2 * k - 1] + squared[2 * k]);
        return torch.stack(perFrequency).sqrt();                                     // [(p + 1) / 2]
        //< solution
    }

    // ── 4. KeyFrequencies ────────────────────────────────────────────────────────────────────────────────────────
    // A trained model's embedding is sparse in frequency: a few key frequencies hold most of its norm. Call k ≥ 1 key
    // when its squared norm is at least 2× the mean squared norm over k ≥ 1 (the constant, entry 0, takes no part).
    // norms [(p + 1)/2] (from EmbeddingNorms) → the key frequencies, ascending. Hint: norms.data<double>().ToArray().
    public static int[] KeyFrequencies(Tensor norms)
    {
        //> solution
        var squared = norms.data<double>().Select(n => n * n).ToArray();
        double mean = squared.Skip(1).Average();
        return [.. Enumerable.Range(1, squared.Length - 1).Where(k => squared[k] >= 2 * mean)];
        //< solution
    }

    // The unit directions cos(w_k(a + b)), sin(w_k(a + b)) over the p² inputs, one pair of columns per key k: [p², 2·keys].
    // Given (exercises 5 and 6 use it); a notebook defines it in the cell before theirs.
    static Tensor SumDirections(int p, int[] keys)
    {
        var a = torch.arange(p, dtype: ScalarType.Float64).repeat_interleave(p); // [p²]: a of row a·p + b
        var b = torch.arange(p, dtype: ScalarType.Float64).repeat(p);            // [p²]: b of row a·p + b
        var columns = new List<Tensor>();
        foreach (int k in keys)
        {
            var angle = (a + b) * (2 * Math.PI * k / p);
            columns.Add(angle.cos());
            columns.Add(angle.sin());
        }
        var D = torch.stack(columns, 1);                                     // [p², 2·keys]
        return D / D.norm(0, keepdim: true);                                 // unit columns
    }

    // ── 5. RestrictedLogits ──────────────────────────────────────────────────────────────────────────────────────
    // The paper's restricted loss keeps only what the key frequencies explain. Over the p² inputs (row a·p + b), the
    // directions cos(w_k(a + b)) and sin(w_k(a + b)), w_k = 2πk/p, each normalised to unit length, are orthonormal
    // (and orthogonal to the constant). Replace each answer's column of logits [p², p] by its mean over the inputs plus
    // its projection on those directions for every key k: mean + D Dᵀ (logits − mean), D [p², 2·keys]. → [p², p].
    // Do not change logits in place.
    public static Tensor RestrictedLogits(Tensor logits, int p, int[] keys)
    {
        //> solution
        var D = SumDirections(p, keys);                                      // [p², 2·keys]
        var mean = logits.mean([0], keepdim: true);                          // [1, p]
        return mean + D.MatMul(D.t().MatMul(logits - mean));                 // [p², p]
        //< solution
    }

    // ── 6. ExcludedLogits ────────────────────────────────────────────────────────────────────────────────────────
    // The excluded loss does the opposite: remove the key frequencies' components and keep everything else,
    // logits − D Dᵀ logits. On the training pairs the model's loss then jumps from ~0 to several nats: its answer
    // lives in the key frequencies. → [p², p]. Do not change logits in place.
    public static Tensor ExcludedLogits(Tensor logits, int p, int[] keys)
    {
        //> solution
        var D = SumDirections(p, keys);                                      // [p², 2·keys]
        return logits - D.MatMul(D.t().MatMul(logits));                      // [p², p]
        //< solution
    }
}
