using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Techniques.Patching;

/// <summary>
/// How every patching sweep starts: the prompt pairs on the model's device, and the clean prompts run once, without
/// gradients, caching the hooks the sweep patches, with the metric of that run averaged over the pairs.
/// </summary>
internal sealed class CleanRun : IDisposable
{
    /// <summary>The pairs on the model's device.</summary>
    public PromptPairs Pairs { get; }
    /// <summary>The hooks cached, in order: a sweep's component at every layer.</summary>
    public List<string> Hooks { get; }
    public Tensor Logits { get; } // [batch, pos, d_vocab]
    public ActivationCache Cache { get; }
    public double Metric { get; }

    /// <summary>The start of a sweep of <paramref name="spec"/>'s component: its hook at every layer cached.</summary>
    public CleanRun(HookedRootModule model, PromptPairs pairs, SweepSpec spec, PatchingMetric metric)
        : this(model, pairs, spec.HookNames(model.Config.NLayers), metric) { }

    public CleanRun(HookedRootModule model, PromptPairs pairs, List<string> hooks, PatchingMetric metric)
    {
        Hooks = hooks;
        Pairs = pairs.To(model.Device);
        try
        {
            using (no_grad()) (Logits, Cache) = model.RunWithCache(Pairs.Clean, hooks, Pairs.AttentionMask);
            Metric = PatchingMetrics.PerPrompt(metric, Logits, Pairs).mean().item<float>();
        }
        catch
        {
            Cache?.Dispose();
            Pairs.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Cache.Dispose();
        Pairs.Dispose();
    }
}
