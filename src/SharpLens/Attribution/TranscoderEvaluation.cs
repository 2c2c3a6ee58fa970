using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>
/// How well a transcoder set stands in for a model's MLPs on held-out text. Per layer: explained variance of the MLP
/// output (open loop: each layer's reconstruction from the model's own input at that layer) and L0. End to end: the
/// next-token loss of the model as it is, with every MLP output replaced by the set's reconstruction computed from the
/// replaced stream (closed loop; a CLT's layer-o output sums the features of layers ≤ o), and with every MLP output
/// zeroed. Position 0 (BOS) keeps its true MLP output in both, as the replacement model gives it no features.
/// </summary>
public static class TranscoderEvaluation
{
    public static TranscoderEvaluationResult Evaluate(HookedTransformer model, TranscoderSet set, IEnumerable<long[]> contexts, long maxTokens, int contextsPerCall = 8)
    {
        var rm = new ReplacementModel(model, set); // checks the set fits the model
        int n = set.NLayers;
        var residual = new double[n]; var total = new double[n]; var active = new double[n];
        var sum = new double[n][]; var sumSq = new double[n];
        for (int l = 0; l < n; l++) sum[l] = new double[set.DModel];
        double clean = 0, replaced = 0, zero = 0;
        long tokens = 0, predictions = 0;
        using var _ = torch.no_grad();
        foreach (var batch in Saes.Data.Contexts.Batches(contexts, contextsPerCall))
        {
            using var scope = torch.NewDisposeScope();
            if (tokens >= maxTokens) break;
            var names = Enumerable.Range(0, n).SelectMany(l => new[] { rm.InputHook(l), rm.OutputHook(l) }).ToList();
            var (logits, cache) = model.RunWithCache(batch, names);
            using (cache)
            {
                for (int l = 0; l < n; l++)
                {
                    var x = cache[rm.InputHook(l)].narrow(1, 1, batch.shape[1] - 1).to(set.DType);  // [batch, pos − 1, d_model]
                    var y = cache[rm.OutputHook(l)].narrow(1, 1, batch.shape[1] - 1).to(set.DType); // [batch, pos − 1, d_model]
                    var acts = set.Encode(l, x); // [batch, pos − 1, d_tc]
                    // Open loop, as training sees it: a CLT's layer-l output also gets what the features of earlier layers write.
                    var recon = OutputOf(set, l, k => k == l ? acts : set.Encode(k, cache[rm.InputHook(k)].narrow(1, 1, batch.shape[1] - 1).to(set.DType)), x);
                    residual[l] += (y - recon).pow(2).sum().to(ScalarType.Float64).item<double>();
                    var flat = y.reshape(-1, set.DModel).to(ScalarType.Float64); // [rows, d_model]
                    var s = flat.sum([0]).data<double>().ToArray(); // sum([0]): sum(0) would be sum(dtype: Byte)
                    for (int i = 0; i < s.Length; i++) sum[l][i] += s[i];
                    sumSq[l] += flat.pow(2).sum().item<double>();
                    active[l] += acts.gt(0).sum().item<long>();
                }
            }
            long rows = batch.shape[0] * (batch.shape[1] - 1);
            tokens += rows;
            clean += Loss(logits, batch) * rows;
            replaced += Loss(Replaced(model, rm, batch, zeroed: false), batch) * rows;
            zero += Loss(Replaced(model, rm, batch, zeroed: true), batch) * rows;
            predictions += rows;
        }
        if (tokens == 0) throw new AttributionArgumentException("contexts", "gave no tokens to evaluate on.");
        for (int l = 0; l < n; l++) total[l] = sumSq[l] - sum[l].Sum(v => v * v) / tokens;
        return new TranscoderEvaluationResult(tokens,
            [.. Enumerable.Range(0, n).Select(l => 1 - residual[l] / total[l])],
            [.. active.Select(a => a / tokens)],
            clean / predictions, replaced / predictions, zero / predictions);
    }

    /// <summary>ŷ at layer <paramref name="o"/> from each layer's activations (given by <paramref name="actsOf"/>) and input x_o.</summary>
    static Tensor OutputOf(TranscoderSet set, int o, Func<int, Tensor> actsOf, Tensor x)
    {
        var recon = set.b_dec[o] + set.SkipOf(o, x); // [..., d_model]
        for (int l = 0; l <= o; l++)
        {
            var (first, count) = set.Outputs(l);
            if (o < first || o >= first + count) continue;
            recon = recon + actsOf(l).MatMul(set.W_dec[l].select(1, o - first)); // [..., d_tc] @ [d_tc, d_model]
        }
        return recon;
    }

    /// <summary>Logits [batch, pos, d_vocab] with every MLP output (but position 0's) replaced by the set's reconstruction, or zeroed.</summary>
    static Tensor Replaced(HookedTransformer model, ReplacementModel rm, Tensor batch, bool zeroed)
    {
        var set = rm.Transcoders;
        var acts = new Tensor?[set.NLayers];
        var inputs = new Tensor?[set.NLayers];
        var hooks = new List<(string, HookFunction)>();
        for (int layer = 0; layer < set.NLayers; layer++)
        {
            int l = layer;
            // Kept out of the blocks' dispose scopes: a CLT's later layers read these.
            hooks.Add((rm.InputHook(l), (x, _) =>
            {
                inputs[l] = x.to(set.DType).DetachFromDisposeScope();
                acts[l] = set.Encode(l, inputs[l]!).DetachFromDisposeScope();
                return null;
            }));
            hooks.Add((rm.OutputHook(l), (y, _) =>
            {
                var recon = zeroed ? torch.zeros_like(y) : OutputOf(set, l, k => acts[k]!, inputs[l]!).to(y.dtype); // [batch, pos, d_model]
                recon[.., 0] = y[.., 0]; // BOS keeps its own MLP output
                return recon;
            }));
        }
        try { return model.RunWithHooks(batch, hooks); }
        finally { foreach (var t in acts.Concat(inputs)) t?.Dispose(); }
    }

    /// <summary>Mean next-token cross-entropy of logits [batch, pos, d_vocab] on tokens [batch, pos], positions 1.. predicted.</summary>
    static double Loss(Tensor logits, Tensor tokens)
    {
        var logProbs = logits.narrow(1, 0, logits.shape[1] - 1).log_softmax(-1); // [batch, pos − 1, d_vocab]
        var targets = tokens.narrow(1, 1, tokens.shape[1] - 1).unsqueeze(-1);   // [batch, pos − 1, 1]
        return -logProbs.gather(-1, targets).mean().item<float>();
    }
}

/// <summary>
/// What <see cref="TranscoderEvaluation.Evaluate"/> measured on <see cref="Tokens"/> held-out positions: per layer,
/// explained variance of the MLP output and mean active features per token; next-token loss (nats) clean, with the MLPs
/// replaced by the transcoders, and with them zeroed.
/// </summary>
public sealed record TranscoderEvaluationResult(long Tokens, double[] ExplainedVariance, double[] L0, double CleanLoss, double ReplacedLoss, double ZeroAblatedLoss)
{
    /// <summary>(zero − replaced) / (zero − clean): 1 when the transcoders lose nothing, 0 when they are no better than no MLPs.</summary>
    public double LossRecovered => (ZeroAblatedLoss - ReplacedLoss) / (ZeroAblatedLoss - CleanLoss);
}
