using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques.Circuits;

/// <summary>Which input of a later head an earlier head's output feeds (Elhage et al., "A Mathematical Framework").</summary>
public enum Composition
{
    /// <summary>The earlier head writes what the later head's queries read: W_OV(A) · W_QK(B).</summary>
    Q,
    /// <summary>The earlier head writes what the later head's keys read: W_OV(A) · W_QK(B)ᵀ. Induction heads K-compose with previous-token heads.</summary>
    K,
    /// <summary>The earlier head writes what the later head's values read: W_OV(A) · W_OV(B).</summary>
    V,
}

/// <summary>
/// Circuits read from the weights alone, in the row-vector convention of TransformerLens (x · W): per head
/// QK = W_Q·W_Kᵀ (scores = x_q·QK·x_kᵀ) and OV = W_V·W_O (output = x·OV), both [d_model, d_model] of rank d_head, and the
/// same circuits through the embedding and unembedding. Biases are left out, as TransformerLens does.
/// <para>With no normalisation (the induction organism) these are exactly the linear maps the model applies. With
/// LayerNorm they leave out the norm's scale: use processed weights (<c>model.ProcessWeights()</c>, the default of
/// <c>FromPretrained</c>), which fold the norm's weights into W_Q, W_K, W_V and W_U, as TransformerLens's numbers assume.</para>
/// </summary>
public static class WeightCircuits
{
    /// <summary>QK circuits of every head: [n_layers, n_heads, d_model, d_model] = W_Q · W_Kᵀ.</summary>
    public static FactoredMatrix QK(HookedTransformer model) =>
        new(Stack(model, a => a.W_Q), Stack(model, a => a.W_K).transpose(-2, -1));

    /// <summary>OV circuits of every head: [n_layers, n_heads, d_model, d_model] = W_V · W_O.</summary>
    public static FactoredMatrix OV(HookedTransformer model) =>
        new(Stack(model, a => a.W_V), Stack(model, a => a.W_O));

    /// <summary>
    /// Full QK circuits [n_layers, n_heads, d_vocab (query token), d_vocab (key token)] = E · W_Q · W_Kᵀ · Eᵀ, where E is
    /// W_E, or W_E plus the mean positional embedding when <paramref name="withMeanPosition"/> (what a token contributes at
    /// a typical position). Only meaningful for layer 0 in general: later layers read more than the embedding.
    /// </summary>
    public static FactoredMatrix FullQK(HookedTransformer model, bool withMeanPosition = false)
    {
        var e = Embedding(model, withMeanPosition); // [d_vocab, d_model]
        return FactoredMatrix.MatMul(e, QK(model)).MatMul(e.T);
    }

    /// <summary>
    /// Full OV circuits [n_layers, n_heads, d_vocab (attended token), d_vocab (logit)] = E · W_V · W_O · W_U: how attending
    /// to a token moves each logit. A copying head has a large positive diagonal.
    /// </summary>
    public static FactoredMatrix FullOV(HookedTransformer model, bool withMeanPosition = false) =>
        FactoredMatrix.MatMul(Embedding(model, withMeanPosition), OV(model)).MatMul(model.unembed.W_U.detach());

    /// <summary>
    /// Positional QK circuits [n_layers, n_heads, n_ctx (query position), n_ctx (key position)] = W_pos · W_Q · W_Kᵀ · W_posᵀ:
    /// a previous-token head shows a large sub-diagonal. Needs learned positional embeddings.
    /// </summary>
    public static FactoredMatrix PositionalQK(HookedTransformer model)
    {
        var pos = model.pos_embed?.W_pos.detach()
            ?? throw new SharpLensArgumentException(nameof(model), $"{model.Config.ModelName} has no learned positional embedding (pos_embed.W_pos); PositionalQK needs one.");
        return FactoredMatrix.MatMul(pos, QK(model)).MatMul(pos.T);
    }

    /// <summary>
    /// Composition score ‖W_A·W_B‖_F / (‖W_A‖_F·‖W_B‖_F), broadcasting every leading index of <paramref name="left"/> against
    /// every leading index of <paramref name="right"/>: left [...a, m, k] and right [...b, k, n] give [...a, ...b].
    /// </summary>
    public static Tensor CompositionScore(FactoredMatrix left, FactoredMatrix right)
    {
        using var scope = NewDisposeScope();
        int la = left.LeadingShape.Length, lb = right.LeadingShape.Length;
        // Give left trailing singleton batch dims for right's leading dims, and right leading singletons for left's.
        var leftA = left.A.reshape([.. left.LeadingShape, .. Enumerable.Repeat(1L, lb), left.Rows, left.InnerDim]);
        var leftB = left.B.reshape([.. left.LeadingShape, .. Enumerable.Repeat(1L, lb), left.InnerDim, left.Columns]);
        var l = new FactoredMatrix(leftA, leftB);
        var r = new FactoredMatrix(
            right.A.reshape([.. Enumerable.Repeat(1L, la), .. right.LeadingShape, right.Rows, right.InnerDim]),
            right.B.reshape([.. Enumerable.Repeat(1L, la), .. right.LeadingShape, right.InnerDim, right.Columns]));
        return (l.MatMul(r).Norm() / (l.Norm() * r.Norm())).MoveToOuterDisposeScope(); // [...a, ...b]
    }

    /// <summary>
    /// Composition scores between every earlier head and every later head: [n_layers, n_heads, n_layers, n_heads], where
    /// [l₁, h₁, l₂, h₂] scores head l₁.h₁ writing into head l₂.h₂'s <paramref name="kind"/> input, and is 0 unless l₁ &lt; l₂
    /// (as TransformerLens's all_composition_scores). Computed one layer pair at a time to bound memory.
    /// </summary>
    public static Tensor CompositionScores(HookedTransformer model, Composition kind)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int layers = model.Config.NLayers, heads = model.Config.NHeads;
        var ov = OV(model);
        var right = kind switch
        {
            Composition.Q => QK(model),
            Composition.K => QK(model).T,
            Composition.V => ov,
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Composition must be Q, K or V."),
        };
        var scores = zeros(layers, heads, layers, heads, dtype: ov.A.dtype, device: ov.A.device);
        for (int earlier = 0; earlier < layers; earlier++)
            for (int later = earlier + 1; later < layers; later++)
                scores[earlier, .., later, ..] = CompositionScore(ov[earlier], right[later]); // [n_heads, n_heads]
        return scores.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Fraction of rows whose largest entry is on the diagonal, for square [..., n, n] circuits (e.g. the full OV circuit:
    /// the fraction of tokens that, attended to, raise their own logit most). [...] in [0, 1]; 1/n for a random matrix.
    /// Works through the rows in blocks so d_vocab × d_vocab is never materialised at once.
    /// </summary>
    public static Tensor DiagonalTopOneFraction(FactoredMatrix circuit, int rowsPerBlock = 1024)
    {
        if (circuit.Rows != circuit.Columns)
            throw new ArgumentException($"DiagonalTopOneFraction needs a square circuit; got {circuit.Rows} × {circuit.Columns}.", nameof(circuit));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var hits = zeros(circuit.LeadingShape, dtype: ScalarType.Float64, device: circuit.A.device);
        for (long start = 0; start < circuit.Rows; start += rowsPerBlock)
        {
            using var block = NewDisposeScope();
            long end = Math.Min(circuit.Rows, start + rowsPerBlock);
            var rows = circuit.A[TensorIndex.Ellipsis, TensorIndex.Slice(start, end), TensorIndex.Colon].MatMul(circuit.B); // [..., block, n]
            var own = arange(start, end, dtype: ScalarType.Int64, device: rows.device);
            hits.add_((rows.argmax(-1) == own).to(ScalarType.Float64).sum(-1)); // [...]
        }
        return (hits / circuit.Rows).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Eigenvalue copying score Σλ / Σ|λ| (real part) of square circuits [..., n, n], from "A Mathematical Framework":
    /// near +1 when the circuit maps things to themselves (copying), near −1 when it suppresses them. [...].
    /// </summary>
    public static Tensor EigenvalueCopyingScore(FactoredMatrix circuit)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var eig = circuit.Eigenvalues.to(ScalarType.ComplexFloat64); // [..., r]
        return (real(eig.sum(-1)) / eig.abs().sum(-1)).MoveToOuterDisposeScope();
    }

    static Tensor Embedding(HookedTransformer model, bool withMeanPosition)
    {
        var e = model.embed.W_E.detach(); // [d_vocab, d_model]
        if (!withMeanPosition) return e;
        var pos = model.pos_embed?.W_pos.detach()
            ?? throw new SharpLensArgumentException("withMeanPosition", $"{model.Config.ModelName} has no learned positional embedding; use withMeanPosition: false.");
        return e + pos.mean([0]); // [d_vocab, d_model]
    }

    static Tensor Stack(HookedTransformer model, Func<Models.Components.Attention, Tensor> weight) =>
        stack(model.blocks.Select(b => weight(b.attn).detach())); // [n_layers, n_heads, ...]
}
