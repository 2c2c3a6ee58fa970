using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>One probe trained at one hook: held-out accuracy, AUROC (binary only) and its direction [d].</summary>
public sealed record ProbeResult(string Hook, double TrainAccuracy, double TestAccuracy, double? TestAuroc, LinearProbe Probe) : IDisposable
{
    public void Dispose() => Probe.Dispose();
}

/// <summary>
/// Trains a probe on the same prompts at several hooks (a sweep over layers): which layers hold the label linearly?
/// Activations are read at one position per prompt: the last real token by default.
/// </summary>
public static class ProbeSweep
{
    /// <summary>The residual stream at each depth: hook_embed, resid_pre of every layer, then the final resid_post.</summary>
    public static IReadOnlyList<string> ResidualHooks(HookedRootModule model) =>
        [.. Enumerable.Range(0, model.Config.NLayers).Select(l => $"blocks.{l}.hook_resid_pre").Prepend("hook_embed")
            .Append($"blocks.{model.Config.NLayers - 1}.hook_resid_post")];

    /// <summary>Activations [n, d] (or [n, head, d_head] for per-head hooks) at each hook, at the last real token of each prompt (or at <paramref name="position"/>).</summary>
    /// <param name="tokens">[n, pos]</param>
    /// <param name="attentionMask">[n, pos] 1 for real tokens (right padding); null when no prompt is padded</param>
    public static Dictionary<string, Tensor> Activations(HookedRootModule model, Tensor tokens, IReadOnlyList<string> hooks,
        Tensor? attentionMask = null, int? position = null)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (_, cache) = model.RunWithCache(tokens, hooks, attentionMask);
        using (cache)
        {
            long n = tokens.shape[0], pos = tokens.shape[1];
            var where = position is int p ? full([n], p < 0 ? pos + p : p, dtype: ScalarType.Int64)
                : attentionMask is null ? full([n], pos - 1, dtype: ScalarType.Int64)
                : attentionMask.to(ScalarType.Int64).sum(1) - 1; // [n] last real token (right padding)
            var result = new Dictionary<string, Tensor>();
            foreach (var hook in hooks)
            {
                var act = cache[hook]; // [n, pos, ...]
                var flat = act.flatten(2); // [n, pos, d]: a per-head hook's trailing dims flattened
                var index = where.to(act.device).view(n, 1, 1).expand(n, 1, flat.shape[2]);
                var picked = flat.gather(1, index).squeeze(1); // [n, d]
                result[hook] = picked.view([n, .. act.shape[2..]]).cpu().MoveToOuterDisposeScope(); // [n, ...]
            }
            return result;
        }
    }

    /// <summary>Fits one probe per hook on a seeded train split and scores it on the held-out rest.</summary>
    /// <param name="labels">[n] class ids</param>
    public static List<ProbeResult> Run(HookedRootModule model, Tensor tokens, Tensor labels, IReadOnlyList<string>? hooks = null,
        ProbeKind kind = ProbeKind.Logistic, ProbeSettings? settings = null, Tensor? attentionMask = null, int? position = null)
    {
        settings = (settings ?? new ProbeSettings()).Validated();
        hooks ??= ResidualHooks(model);
        var activations = Activations(model, tokens, hooks, attentionMask, position);
        try
        {
            return [.. hooks.Select(h => Fit(h, activations[h], labels, kind, settings))];
        }
        finally
        {
            foreach (var t in activations.Values) t.Dispose();
        }
    }

    /// <summary>Fits and evaluates one probe on activations [n, d] with a seeded train / test split.</summary>
    public static ProbeResult Fit(string hook, Tensor activations, Tensor labels, ProbeKind kind, ProbeSettings settings)
    {
        using var scope = NewDisposeScope();
        var (trainIdx, testIdx) = ProbeMetrics.TrainTestSplit((int)activations.shape[0], settings.TestFraction, settings.Seed);
        var train = tensor(trainIdx);
        var test = tensor(testIdx);
        var y = labels.to(ScalarType.Int64).cpu();
        var x = activations.cpu();
        var probe = kind == ProbeKind.Logistic
            ? LogisticRegression.Fit(x.index_select(0, train), y.index_select(0, train), settings, Math.Max(2, (int)y.max().item<long>() + 1))
            : MeanDifferenceProbe.Fit(x.index_select(0, train), y.index_select(0, train));
        double trainAccuracy = ProbeMetrics.Accuracy(probe.Predict(x.index_select(0, train)), y.index_select(0, train));
        double testAccuracy = ProbeMetrics.Accuracy(probe.Predict(x.index_select(0, test)), y.index_select(0, test));
        double? auroc = null;
        var yTest = y.index_select(0, test);
        if (probe.IsBinary && yTest.sum().item<long>() is long pos && pos > 0 && pos < yTest.shape[0])
            auroc = ProbeMetrics.Auroc(probe.Scores(x.index_select(0, test)), yTest);
        probe.Weight.MoveToOuterDisposeScope();
        probe.Bias.MoveToOuterDisposeScope();
        return new ProbeResult(hook, trainAccuracy, testAccuracy, auroc, probe);
    }
}
