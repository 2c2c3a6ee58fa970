using SharpLens.Hooks;
using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>One token the lens predicts at a layer and position, with its probability.</summary>
public sealed record LensToken(int Token, double Probability);

/// <summary>
/// The logit lens (nostalgebraist, 2020): read each layer's residual stream as if it were the last, by applying the
/// final norm and the unembedding to it. Row l reads <c>blocks.{l}.hook_resid_pre</c> (row 0 sees only the
/// embeddings); the last row, n_layers, is the model's own output.
/// </summary>
public sealed class LogitLensResult : IDisposable
{
    /// <summary>[n_layers + 1, batch, pos, d_vocab] log-probabilities.</summary>
    public Tensor LogProbs { get; }
    public IReadOnlyList<string> RowNames { get; }

    internal LogitLensResult(Tensor logProbs, IReadOnlyList<string> rowNames) => (LogProbs, RowNames) = (logProbs, rowNames);

    public int Rows => (int)LogProbs.shape[0];

    /// <summary>The k most probable tokens at a row (layer), sequence and position.</summary>
    public IReadOnlyList<LensToken> TopTokens(int row, int position, int k = 5, int batch = 0)
    {
        using var scope = NewDisposeScope();
        var probs = LogProbs[row, batch, position].exp(); // [d_vocab]
        var (values, indices) = probs.topk(Math.Min(k, (int)probs.shape[0]));
        var v = values.to(ScalarType.Float64).cpu().data<double>().ToArray();
        var i = indices.to(ScalarType.Int64).cpu().data<long>().ToArray();
        return [.. v.Select((p, j) => new LensToken((int)i[j], p))];
    }

    /// <summary>Log-probability of one target token per (batch, position): [n_layers + 1, batch, pos].</summary>
    /// <param name="targets">[batch, pos] token ids</param>
    public Tensor TargetLogProbs(Tensor targets)
    {
        var index = Targets(targets);
        return LogProbs.gather(-1, index).squeeze(-1); // [rows, batch, pos]
    }

    /// <summary>Rank of one target token per (batch, position), 0 = the top token: [n_layers + 1, batch, pos].</summary>
    /// <param name="targets">[batch, pos] token ids</param>
    public Tensor TargetRanks(Tensor targets)
    {
        using var scope = NewDisposeScope();
        var target = LogProbs.gather(-1, Targets(targets)); // [rows, batch, pos, 1]
        return (LogProbs > target).sum(-1).MoveToOuterDisposeScope(); // [rows, batch, pos]
    }

    Tensor Targets(Tensor targets)
    {
        if (targets.dim() == 1) targets = targets.unsqueeze(0);
        if (targets.shape[0] != LogProbs.shape[1] || targets.shape[1] != LogProbs.shape[2])
            throw new ArgumentException(
                $"targets has shape {ShapeText.Of(targets.shape)} but the lens covers [batch {LogProbs.shape[1]}, pos {LogProbs.shape[2]}].", nameof(targets));
        return targets.to(ScalarType.Int64).to(LogProbs.device).unsqueeze(0).unsqueeze(-1).expand(LogProbs.shape[0], -1, -1, 1); // [rows, batch, pos, 1]
    }

    public void Dispose() => LogProbs.Dispose();
}

public static class LogitLens
{
    /// <summary>Runs the model once and reads every layer through the final norm and unembedding.</summary>
    /// <param name="tokens">[batch, pos] or [pos]</param>
    public static LogitLensResult Run(HookedTransformer model, Tensor tokens, Tensor? attentionMask = null)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int layers = model.Config.NLayers;
        var names = Enumerable.Range(0, layers).Select(l => ActivationCache.ActName("resid_pre", l)).ToList();
        var (logits, cache) = model.RunWithCache(tokens, names, attentionMask);
        using (cache)
        {
            var rows = names.Select(n => model.unembed.Forward(FinalNorm.Apply(model, cache[n])).log_softmax(-1)).ToList();
            rows.Add(logits.log_softmax(-1));
            var logProbs = stack(rows).MoveToOuterDisposeScope(); // [n_layers + 1, batch, pos, d_vocab]
            return new LogitLensResult(logProbs, [.. names, "output"]);
        }
    }
}
