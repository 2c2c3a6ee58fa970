using static TorchSharp.torch;

namespace SharpLens.Models;

/// <summary>The logit filters of sampling: what <see cref="HookedTransformer.Generate"/> applies before it draws a token.</summary>
public static class Sampling
{
    /// <summary>Keeps the <paramref name="k"/> largest logits of each row (ties with the k-th included); the rest become −∞.</summary>
    public static Tensor TopK(Tensor logits, int k) // [batch, d_vocab]
    {
        if (k >= logits.shape[^1]) return logits;
        var kth = logits.topk(k).values[.., ^1..]; // [batch, 1]
        return logits.masked_fill(logits < kth, double.NegativeInfinity);
    }

    /// <summary>
    /// Nucleus filter: keeps the most likely tokens of each row until their probability reaches <paramref name="p"/>
    /// (the token that crosses p stays, and so does the top token); the rest become −∞.
    /// </summary>
    public static Tensor TopP(Tensor logits, double p) // [batch, d_vocab]
    {
        if (p >= 1) return logits;
        var (sorted, order) = logits.sort(-1, descending: true); // [batch, d_vocab]
        var probs = sorted.softmax(-1);
        var cumulative = probs.cumsum(-1);
        // Drop a token once the tokens before it already reach p; the top token always stays.
        var drop = (cumulative - probs) >= p;
        var dropInVocabOrder = zeros_like(drop).scatter(-1, order, drop);
        return logits.masked_fill(dropInVocabOrder, double.NegativeInfinity);
    }
}
