using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques.Patching;

/// <summary>
/// Denoising activation patching: run the corrupted prompts, and for each cell put back the clean activation there; the
/// normalised metric says how much of the clean behaviour that one activation restores (0 = none, 1 = all).
/// Sweeps are batched: many patched copies of the corrupted prompts run in one forward pass (see <see cref="PatchingOptions"/>).
/// </summary>
public static class ActivationPatching
{
    /// <summary>
    /// Patches <paramref name="component"/> (resid_pre, resid_mid, resid_post, attn_out, mlp_out, z, q, k, v, pattern, post)
    /// cell by cell. Result shapes: by Position [n_layers, pos]; by Head [n_layers, n_heads]; by HeadPosition
    /// [n_layers, pos, n_heads]; by Layer [n_layers]; by Neuron [n_layers, d_mlp]. The default split is Position for
    /// residual components and Head for head components.
    /// </summary>
    public static PatchingResult Sweep(HookedRootModule model, PromptPairs pairs, string component, SweepBy? by = null, PatchingOptions? options = null)
    {
        options ??= new PatchingOptions();
        var spec = SweepSpec.For(model, component, by);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var run = new CleanRun(model, pairs, spec, options.Metric);
        var onDevice = run.Pairs;
        double clean = run.Metric;
        double corrupted = PatchingMetrics.PerPrompt(options.Metric, model.Run(onDevice.Corrupted, onDevice.AttentionMask), onDevice).mean().item<float>();
        PatchingMetrics.CheckSpan(clean, corrupted);
        var sources = run.Hooks.Select(h => run.Cache[h]).ToList();
        var (raw, passes) = PatchSweepEngine.Run(model, spec, onDevice.Corrupted, onDevice.AttentionMask, onDevice.LastPositions, onDevice.Answers, onDevice.WrongAnswers,
            sources, options, $"activation patching {component}");
        var normalised = ((raw - corrupted) / (clean - corrupted)).to(ScalarType.Float32);
        return new PatchingResult(component, spec.DimNames, normalised.DetachFromDisposeScope(), clean, corrupted, passes + 2);
    }
}
