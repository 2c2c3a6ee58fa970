using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models;

/// <summary>Next-token cross-entropy, as TransformerLens's lm_cross_entropy_loss, padding-aware.</summary>
public partial class HookedTransformer
{
    /// <summary>
    /// −log p(token[t+1] | tokens ≤ t) for each t: [batch, pos − 1]. With an attention mask, a prediction counts only
    /// when both the position and the next one are real tokens; the others are 0.
    /// </summary>
    /// <param name="logits">[batch, pos, d_vocab]</param>
    /// <param name="tokens">[batch, pos] token ids that produced the logits</param>
    /// <param name="attentionMask">[batch, pos] 1 for real tokens, 0 for padding</param>
    public static Tensor LossPerToken(Tensor logits, Tensor tokens, Tensor? attentionMask = null)
    {
        using var scope = torch.NewDisposeScope();
        var (perToken, _) = PerTokenLossAndMask(logits, tokens, attentionMask);
        return perToken.MoveToOuterDisposeScope();
    }

    /// <summary>Mean next-token loss over the predictions that count (padding excluded): a scalar.</summary>
    public static Tensor Loss(Tensor logits, Tensor tokens, Tensor? attentionMask = null)
    {
        using var scope = torch.NewDisposeScope();
        var (perToken, counted) = PerTokenLossAndMask(logits, tokens, attentionMask);
        var n = counted is null ? perToken.numel() : counted.sum().item<long>();
        if (n == 0) throw new ModelInputException(nameof(attentionMask), "No position has a real next token, so the loss is undefined: each sequence needs at least two real tokens.");
        return (perToken.sum() / n).MoveToOuterDisposeScope();
    }

    static (Tensor PerToken, Tensor? Counted) PerTokenLossAndMask(Tensor logits, Tensor tokens, Tensor? attentionMask)
    {
        if (tokens.dim() == 1) tokens = tokens.unsqueeze(0);
        if (logits.dim() != 3 || tokens.dim() != 2 || logits.shape[0] != tokens.shape[0] || logits.shape[1] != tokens.shape[1])
            throw new ModelInputException(nameof(logits), $"logits must be [batch, pos, d_vocab] for tokens [batch, pos]; got logits {ShapeText.Of(logits.shape)} and tokens {ShapeText.Of(tokens.shape)}.");
        if (tokens.shape[1] < 2) throw new ModelInputException(nameof(tokens), "The loss needs at least two positions: one to predict from and one to predict.");
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(tokens.shape))
            throw new ModelInputException(nameof(attentionMask), $"attentionMask has shape {ShapeText.Of(attentionMask.shape)} but tokens have {ShapeText.Of(tokens.shape)}.");

        // Half-precision logits lose too much in log_softmax; float32 and float64 keep their precision.
        var wide = logits.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? logits.to(ScalarType.Float32) : logits;
        var logProbs = wide[.., ..^1].log_softmax(-1); // [batch, pos-1, d_vocab]
        var next = tokens[.., 1..].to(ScalarType.Int64).to(logits.device).unsqueeze(-1); // [batch, pos-1, 1]
        var perToken = -logProbs.gather(-1, next).squeeze(-1); // [batch, pos-1]
        if (attentionMask is null) return (perToken, null);

        var mask = attentionMask.to(ScalarType.Bool).to(logits.device);
        var counted = mask[.., ..^1] & mask[.., 1..]; // [batch, pos-1]
        return (perToken.masked_fill(counted.logical_not(), 0), counted);
    }
}
