using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Hooks;

/// <summary>
/// What every hooked model does with its hook points, written once (TransformerLens's <c>HookedRootModule</c>): find one
/// by name, attach and remove hooks, run with hooks for one call, record a cache. <see cref="HookedTransformer"/>,
/// <see cref="Models.Encoder.HookedEncoder"/> and the SAE-spliced model derive from it, so a technique that only needs
/// hooks and a forward pass takes this type and runs on all of them.
/// </summary>
/// <remarks>
/// A subclass builds its components with <see cref="HookPoints"/> (each component creates its hook points there, in
/// forward order) and implements <see cref="Run(Tensor, Tensor?)"/>; everything else here follows.
/// </remarks>
public abstract class HookedRootModule : nn.Module
{
    protected HookedRootModule(string name, HookPointSet hookPoints) : base(name) => HookPoints = hookPoints;

    /// <summary>The hook points the components created, by name.</summary>
    protected internal HookPointSet HookPoints { get; }

    /// <summary>The model's shape: layers, widths, heads, vocabulary.</summary>
    public abstract ModelConfig Config { get; }

    /// <summary>The device the parameters live on; inputs are moved there.</summary>
    public abstract Device Device { get; }

    /// <summary>
    /// The model's output for token ids [batch, pos] (or [pos]): logits [batch, pos, d_vocab] for a decoder (or an
    /// encoder with a masked-LM head), the last hidden state [batch, pos, d_model] for an encoder without one.
    /// </summary>
    /// <param name="attentionMask">[batch, pos]: 1 for real tokens, 0 for padding.</param>
    public abstract Tensor Run(Tensor tokens, Tensor? attentionMask = null);

    /// <summary>Every hook point, by TransformerLens name, in the order the forward pass reaches them.</summary>
    public IReadOnlyDictionary<string, HookPoint> HookDict => HookPoints.ByName;

    /// <summary>The hook point with this name; a misspelt name lists the closest valid ones.</summary>
    public HookPoint GetHookPoint(string name) => HookPoints.Get(name);

    /// <summary>Attaches a long-lived hook; dispose the handle to remove it.</summary>
    public IDisposable AddHook(string name, HookFunction hook, HookDirection direction = HookDirection.Forward) =>
        GetHookPoint(name).Add(hook, direction);

    /// <summary>Attaches a hook to every hook point whose name passes <paramref name="filter"/>; dispose the handle to remove them all.</summary>
    public IDisposable AddHook(Func<string, bool> filter, HookFunction hook, HookDirection direction = HookDirection.Forward) =>
        HookPoints.AttachWhere(filter, hook, direction);

    /// <summary>
    /// Attaches forward and backward hooks until the returned handle is disposed, like TransformerLens's
    /// <c>with model.hooks(...)</c>: <c>using (model.Hooks(fwd, bwd)) { ...; loss.backward(); }</c>.
    /// Every name is checked before any hook is attached. Hooks attached this way also act during generation.
    /// </summary>
    public IDisposable Hooks(IEnumerable<(string Name, HookFunction Hook)>? forward = null,
                             IEnumerable<(string Name, HookFunction Hook)>? backward = null) => HookPoints.Attach(forward, backward);

    /// <summary>Removes every hook from every hook point.</summary>
    public void ResetHooks() => HookPoints.Clear();

    /// <summary>Makes hook points owned by something spliced into the model (an SAE) part of <see cref="HookDict"/> until disposed.</summary>
    internal IDisposable AdoptHookPoints(IReadOnlyList<HookPoint> points) => HookPoints.Adopt(points);

    /// <summary>Runs with these forward hooks attached for this call only; they are removed even if it throws.</summary>
    public Tensor RunWithHooks(Tensor tokens, IEnumerable<(string Name, HookFunction Hook)> forwardHooks, Tensor? attentionMask = null)
    {
        using var _ = Hooks(forwardHooks);
        return Run(tokens, attentionMask);
    }

    /// <summary>
    /// TransformerLens's <c>run_with_hooks(fwd_hooks, bwd_hooks)</c>: runs with forward hooks, then backpropagates
    /// <paramref name="backwardFrom"/>(output) — a scalar, e.g. a loss or a logit difference — while the backward hooks
    /// are still attached, so each sees (and may replace) the gradient at its hook point. Every hook is removed when
    /// the call returns, even if it throws. Returns the output; gradients are left on the parameters as backward leaves them.
    /// </summary>
    public Tensor RunWithHooks(Tensor tokens, IEnumerable<(string Name, HookFunction Hook)>? forwardHooks,
        IEnumerable<(string Name, HookFunction Hook)> backwardHooks, Func<Tensor, Tensor> backwardFrom, Tensor? attentionMask = null)
    {
        using var _ = Hooks(forwardHooks, backwardHooks);
        var output = Run(tokens, attentionMask);
        using var scope = NewDisposeScope();
        var scalar = backwardFrom(output);
        if (scalar.numel() != 1)
            throw new ArgumentException($"backwardFrom must give one number to backpropagate (a loss or a metric); it gave shape {ShapeText.Of(scalar.shape)}.", nameof(backwardFrom));
        if (!scalar.requires_grad)
            throw new ArgumentException("backwardFrom gave a value with no gradient: nothing in the model requires grad (is this inside no_grad, or are the parameters frozen?).", nameof(backwardFrom));
        scalar.backward();
        return output;
    }

    /// <summary>
    /// Runs and records the activations at every hook point whose name passes <paramref name="namesFilter"/>
    /// (all of them when null). Only what was asked for is kept.
    /// </summary>
    public (Tensor Output, ActivationCache Cache) RunWithCache(Tensor tokens, Func<string, bool>? namesFilter = null,
        Tensor? attentionMask = null, Device? cacheDevice = null) =>
        Record(NamesPassing(namesFilter), () => Run(tokens, attentionMask), cacheDevice);

    /// <summary>Runs and records exactly the named activations; an unknown name is an error before anything runs.</summary>
    public (Tensor Output, ActivationCache Cache) RunWithCache(Tensor tokens, IEnumerable<string> names,
        Tensor? attentionMask = null, Device? cacheDevice = null) =>
        Record(CheckedNames(names), () => Run(tokens, attentionMask), cacheDevice);

    /// <summary>The hook names that pass a filter (all when null), in forward order.</summary>
    protected List<string> NamesPassing(Func<string, bool>? namesFilter) =>
        [.. HookDict.Keys.Where(n => namesFilter?.Invoke(n) ?? true)];

    /// <summary>The names as a list, each checked to exist.</summary>
    protected List<string> CheckedNames(IEnumerable<string> names)
    {
        var list = names.ToList();
        foreach (var name in list) GetHookPoint(name);
        return list;
    }

    /// <summary>Runs <paramref name="run"/> recording <paramref name="names"/>: for a subclass's own RunWithCache overloads.</summary>
    protected (Tensor Output, ActivationCache Cache) Record(List<string> names, Func<Tensor> run, Device? cacheDevice) =>
        HookPoints.Record(names, run, cacheDevice);
}
