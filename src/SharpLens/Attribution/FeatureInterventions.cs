using SharpLens.Hooks;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>
/// Set a feature at (layer, position) to <see cref="Value"/>, or multiply it by <see cref="Factor"/>. With
/// <see cref="OpenEnded"/> it applies at <see cref="Position"/> and every later one, tokens generated later included.
/// </summary>
public sealed record FeatureIntervention(int Layer, int Position, long Feature, double? Value = null, double? Factor = null, bool OpenEnded = false)
{
    public static FeatureIntervention Set(int layer, int position, long feature, double value, bool openEnded = false) => new(layer, position, feature, value, null, openEnded);
    public static FeatureIntervention Scale(int layer, int position, long feature, double factor, bool openEnded = false) => new(layer, position, feature, null, factor, openEnded);
}

/// <summary>Logits [pos, d_vocab] after an intervention and every layer's feature activations [n_layers, pos, d_transcoder].</summary>
public sealed record InterventionResult(Tensor Logits, Tensor Activations) : IDisposable
{
    public void Dispose() { Logits.Dispose(); Activations.Dispose(); }
}

/// <summary>
/// circuit-tracer's feature interventions: the model runs with its real MLPs; at each layer the transcoder features are
/// computed from the layer's actual input, and for every intervened feature the difference (new − current) times its
/// decoder row is added to the MLP output(s) it writes (all later layers for a CLT), so the change propagates through
/// the rest of the model, later features included. With <c>freezeAttention</c> the attention patterns of the prompt's
/// positions are the original prompt's (generated positions attend freely).
/// </summary>
public static class FeatureInterventions
{
    public static InterventionResult Run(ReplacementModel rm, Tensor tokens, IReadOnlyList<FeatureIntervention> interventions, bool freezeAttention = true)
    {
        var ids = (tokens.dim() == 2 ? tokens[0] : tokens).to(ScalarType.Int64);
        return Run(rm, ids, interventions, freezeAttention ? Patterns(rm, ids) : null, disposePatterns: true);
    }

    /// <summary>Greedy continuation of <paramref name="tokens"/> by <paramref name="maxNewTokens"/> tokens with the interventions applied at every step.</summary>
    public static Tensor Generate(ReplacementModel rm, Tensor tokens, IReadOnlyList<FeatureIntervention> interventions, int maxNewTokens, bool freezeAttention = true)
    {
        if (maxNewTokens < 0) throw new AttributionArgumentException("maxNewTokens", $"must not be negative, got {maxNewTokens}.");
        using var scope = torch.NewDisposeScope();
        var ids = (tokens.dim() == 2 ? tokens[0] : tokens).to(ScalarType.Int64).cpu();
        var patterns = freezeAttention ? Patterns(rm, ids) : null;
        try
        {
            for (int step = 0; step < maxNewTokens && ids.shape[0] < rm.Model.Config.NCtx; step++)
            {
                using var r = Run(rm, ids, interventions, patterns, disposePatterns: false);
                var next = r.Logits[-1].argmax().reshape(1).cpu();
                ids = torch.cat([ids, next]);
            }
        }
        finally { if (patterns is not null) foreach (var p in patterns.Values) p.Dispose(); }
        return ids.MoveToOuterDisposeScope();
    }

    static Dictionary<string, Tensor> Patterns(ReplacementModel rm, Tensor ids)
    {
        var names = rm.Model.HookDict.Keys.Where(n => n.EndsWith(".hook_pattern", StringComparison.Ordinal)).ToList();
        using var _ = torch.no_grad();
        var (logits, cache) = rm.Model.RunWithCache(ids.unsqueeze(0), names);
        logits.Dispose();
        using (cache) return names.ToDictionary(n => n, n => cache[n].clone().DetachFromDisposeScope());
    }

    static InterventionResult Run(ReplacementModel rm, Tensor ids, IReadOnlyList<FeatureIntervention> interventions, Dictionary<string, Tensor>? patterns, bool disposePatterns)
    {
        var tc = rm.Transcoders;
        int L = rm.NLayers;
        long pos = ids.shape[0];
        foreach (var iv in interventions)
        {
            if (iv.Layer < 0 || iv.Layer >= L) throw new AttributionArgumentException("interventions", $"layer {iv.Layer} is outside 0..{L - 1}.");
            if (iv.Feature < 0 || iv.Feature >= tc.DTranscoder) throw new AttributionArgumentException("interventions", $"feature {iv.Feature} is outside 0..{tc.DTranscoder - 1}.");
            if (iv.Position < 0 || (!iv.OpenEnded && iv.Position >= pos)) throw new AttributionArgumentException("interventions", $"position {iv.Position} is outside the prompt's 0..{pos - 1}.");
            if ((iv.Value is null) == (iv.Factor is null)) throw new AttributionArgumentException("interventions", "give exactly one of a value (set) or a factor (scale).");
        }
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var acts = new Tensor[L];
        var deltas = torch.zeros(L, pos, tc.DModel, dtype: tc.DType); // added to each MLP output
        var hooks = new List<(string, HookFunction)>();
        if (patterns is not null)
            foreach (var (name, frozen) in patterns)
                hooks.Add((name, (a, _) =>
                {
                    long n = frozen.shape[^1];
                    var p = a.clone();
                    p[.., .., ..(int)n, ..(int)n] = frozen.to(a.dtype);
                    return p;
                }));
        for (int layer = 0; layer < L; layer++)
        {
            int l = layer;
            var mine = interventions.Where(iv => iv.Layer == l).ToList();
            hooks.Add((rm.InputHook(l), (x, _) => { acts[l] = tc.Encode(l, x[0].to(tc.DType)).DetachFromDisposeScope(); return null; }));
            hooks.Add((rm.OutputHook(l), (y, _) =>
            {
                var (first, count) = tc.Outputs(l);
                foreach (var iv in mine)
                {
                    int from = iv.Position, to = iv.OpenEnded ? (int)pos : iv.Position + 1;
                    for (int p = from; p < to; p++)
                    {
                        double current = acts[l][p, iv.Feature].to(ScalarType.Float64).item<double>();
                        double change = (iv.Value ?? iv.Factor!.Value * current) - current;
                        if (change == 0) continue;
                        for (int j = 0; j < count; j++) deltas[first + j, p].add_(tc.W_dec[l][iv.Feature, j] * change);
                    }
                }
                return y + deltas[l].to(y.dtype).unsqueeze(0);
            }));
        }
        var logits = rm.Model.RunWithHooks(ids.unsqueeze(0), hooks)[0];
        var result = new InterventionResult(logits.MoveToOuterDisposeScope(), torch.stack(acts).MoveToOuterDisposeScope());
        foreach (var a in acts) a.Dispose();
        if (disposePatterns && patterns is not null) foreach (var p in patterns.Values) p.Dispose();
        return result;
    }
}
