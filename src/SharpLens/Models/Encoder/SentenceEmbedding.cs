using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models.Encoder;

/// <summary>Pooling a token-level hidden state into one vector per text, as sentence-transformers does.</summary>
public static class SentenceEmbedding
{
    /// <summary>Mean over real tokens: Σ_p mask[p]·hidden[p] / Σ_p mask[p]. [batch, d_model].</summary>
    public static Tensor MeanPool(Tensor hidden, Tensor attentionMask) // hidden: [batch, pos, d_model], mask: [batch, pos]
    {
        var weights = attentionMask.to(hidden.dtype).to(hidden.device).unsqueeze(-1); // [batch, pos, 1]
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9);           // [batch, d_model]
    }

    /// <summary>Each row scaled to unit L2 norm, so dot products are cosine similarities.</summary>
    public static Tensor Normalize(Tensor embeddings) => nn.functional.normalize(embeddings, p: 2, dim: -1); // [batch, d_model]

    public static Tensor MeanPoolNormalized(Tensor hidden, Tensor attentionMask) => Normalize(MeanPool(hidden, attentionMask));

    /// <summary>Cosine similarity of every pair of rows: [a, d] × [b, d] → [a, b].</summary>
    public static Tensor CosineSimilarity(Tensor a, Tensor b) => Normalize(a).MatMul(Normalize(b).t()); // [a, b]
}
