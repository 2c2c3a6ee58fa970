using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques.Patching;

/// <summary>What an ablated activation is replaced with.</summary>
public enum AblationKind
{
    /// <summary>Zeros.</summary>
    Zero,
    /// <summary>The mean of the activation over every real token of a reference set.</summary>
    Mean,
    /// <summary>The activation of another prompt (a reference prompt of the same length) at the same position.</summary>
    Resample,
}

/// <summary>What is ablated, one unit at a time.</summary>
public enum AblationUnit
{
    /// <summary>Each head's output z: result [n_layers, n_heads].</summary>
    Heads,
    /// <summary>Each MLP neuron (mlp post): result [n_layers, d_mlp].</summary>
    Neurons,
    /// <summary>Each attention layer's output attn_out: result [n_layers].</summary>
    AttentionLayers,
    /// <summary>Each MLP layer's output mlp_out: result [n_layers].</summary>
    MlpLayers,
    /// <summary>Each (layer, position) of the residual stream resid_pre: result [n_layers, pos].</summary>
    Positions,
}

/// <summary>An ablation sweep: the metric with each unit ablated, and the unablated baseline.</summary>
public sealed class AblationResult(AblationUnit unit, AblationKind kind, IReadOnlyList<string> dims, Tensor metric, double baseline, int forwardPasses) : IDisposable
{
    public AblationUnit Unit { get; } = unit;
    public AblationKind Kind { get; } = kind;
    public IReadOnlyList<string> Dims { get; } = dims;
    /// <summary>The metric (mean over prompts) with that unit ablated, float32 on the CPU.</summary>
    public Tensor Metric { get; } = metric;
    /// <summary>The metric with nothing ablated.</summary>
    public double Baseline { get; } = baseline;
    public int ForwardPasses { get; } = forwardPasses;
    /// <summary>Baseline − ablated metric: how much each unit matters (for logit difference, larger = more important).</summary>
    public Tensor Effect() => Baseline - Metric;

    public void Dispose() => Metric.Dispose();
}

/// <summary>
/// Knocks out one unit at a time on the clean prompts of <see cref="PromptPairs"/> and measures the metric there.
/// Batched like activation patching: many ablated copies share one forward pass.
/// </summary>
public static class Ablation
{
    /// <param name="reference">
    /// Token ids [R, pos′] for Mean (default: the clean prompts) or [R, pos] of the prompts' length for Resample (default: the
    /// corrupted prompts); prompt b takes reference row b mod R.
    /// </param>
    public static AblationResult Sweep(HookedRootModule model, PromptPairs pairs, AblationUnit unit, AblationKind kind = AblationKind.Zero,
        Tensor? reference = null, PatchingOptions? options = null)
    {
        options ??= new PatchingOptions();
        var (component, by) = unit switch
        {
            AblationUnit.Heads => ("z", SweepBy.Head),
            AblationUnit.Neurons => ("post", SweepBy.Neuron),
            AblationUnit.AttentionLayers => ("attn_out", SweepBy.Layer),
            AblationUnit.MlpLayers => ("mlp_out", SweepBy.Layer),
            AblationUnit.Positions => ("resid_pre", SweepBy.Position),
            _ => throw new ArgumentOutOfRangeException(nameof(unit), unit, "Unknown ablation unit."),
        };
        var spec = SweepSpec.For(model, component, by);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var run = new CleanRun(model, pairs, spec, options.Metric);
        var (onDevice, hooks) = (run.Pairs, run.Hooks);
        var sources = kind switch
        {
            AblationKind.Zero => hooks.Select(h => zeros_like(run.Cache[h][0..1])).ToList(),
            AblationKind.Mean => MeanSources(model, reference ?? pairs.Clean, reference is null ? pairs.AttentionMask : null, hooks, spec, pairs.Positions),
            AblationKind.Resample => ResampleSources(model, reference ?? pairs.Corrupted, pairs, hooks),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown ablation kind."),
        };
        var (metric, passes) = PatchSweepEngine.Run(model, spec, onDevice.Clean, onDevice.AttentionMask, onDevice.LastPositions, onDevice.Answers, onDevice.WrongAnswers,
            sources, options, $"{kind} ablation of {unit}");
        return new AblationResult(unit, kind, spec.DimNames, metric.to(ScalarType.Float32).DetachFromDisposeScope(), run.Metric, passes + 1);
    }

    /// <summary>Per layer [1, pos, rest...]: the mean over every real reference token (batch and position).</summary>
    static List<Tensor> MeanSources(HookedRootModule model, Tensor reference, Tensor? referenceMask, List<string> hooks, SweepSpec spec, long positions)
    {
        var device = model.Device;
        if (reference.dim() == 1) reference = reference.unsqueeze(0);
        var (_, cache) = model.RunWithCache(reference.to(device), hooks, referenceMask?.to(device));
        using (cache)
        {
            var weights = (referenceMask ?? ones_like(reference)).to(device).to(ScalarType.Float32); // [R, pos']
            return hooks.Select(h =>
            {
                var act = cache[h]; // [R, pos, ...] or pattern [R, head, q, k]
                if (spec.Component == "pattern")
                    throw new PatchingException("Mean ablation of attention patterns is not defined here; ablate z instead.");
                var w = weights.view([.. weights.shape, .. Enumerable.Repeat(1L, (int)act.dim() - 2)]);
                var mean = (act * w).sum([0, 1], keepdim: true) / w.sum(); // [1, 1, rest after pos...]
                return mean.expand([1, positions, .. act.shape[2..]]); // [1, pos, rest after pos...]
            }).ToList();
        }
    }

    /// <summary>Per layer [B, rest...]: prompt b takes reference row b mod R.</summary>
    static List<Tensor> ResampleSources(HookedRootModule model, Tensor reference, PromptPairs pairs, List<string> hooks)
    {
        if (reference.dim() == 1) reference = reference.unsqueeze(0);
        if (reference.shape[1] != pairs.Positions)
            throw new ArgumentException($"Resample ablation needs reference prompts of the prompts' length ({pairs.Positions} tokens); got {ShapeText.Of(reference.shape)}.", nameof(reference));
        var device = model.Device;
        var rows = arange(pairs.Count, dtype: ScalarType.Int64) % reference.shape[0];
        var (_, cache) = model.RunWithCache(reference.index_select(0, rows).to(device), hooks);
        using (cache) return hooks.Select(h => cache[h].clone()).ToList();
    }
}
