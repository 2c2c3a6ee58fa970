using TorchSharp;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models;

public sealed partial class HookedTransformer
{
    /// <summary>The hook point with this name; a misspelt name lists the closest valid ones.</summary>
    public HookPoint GetHookPoint(string name) => _hooks.Get(name);

    /// <summary>Attaches a long-lived hook; dispose the handle to remove it.</summary>
    public IDisposable AddHook(string name, HookFunction hook, HookDirection direction = HookDirection.Forward) =>
        GetHookPoint(name).Add(hook, direction);

    /// <summary>Attaches a hook to every hook point whose name passes <paramref name="filter"/>.</summary>
    public IDisposable AddHook(Func<string, bool> filter, HookFunction hook, HookDirection direction = HookDirection.Forward) =>
        _hooks.AttachWhere(filter, hook, direction);

    /// <summary>
    /// Attaches forward and backward hooks until the returned handle is disposed, like TransformerLens's
    /// <c>with model.hooks(...)</c>: <c>using (model.Hooks(fwd, bwd)) { ...; loss.backward(); }</c>.
    /// Every name is checked before any hook is attached.
    /// </summary>
    public IDisposable Hooks(IEnumerable<(string Name, HookFunction Hook)>? forward = null,
                             IEnumerable<(string Name, HookFunction Hook)>? backward = null) => _hooks.Attach(forward, backward);

    /// <summary>Removes every hook from every hook point.</summary>
    public void ResetHooks() => _hooks.Clear();

    /// <summary>Makes hook points owned by something spliced into the model (an SAE) part of <see cref="HookDict"/> until disposed.</summary>
    internal IDisposable AdoptHookPoints(IReadOnlyList<HookPoint> points) => _hooks.Adopt(points);

    /// <summary>Runs with these forward hooks attached for this call only; they are removed even if it throws.</summary>
    public Tensor RunWithHooks(Tensor tokens, IEnumerable<(string Name, HookFunction Hook)> forwardHooks, Tensor? attentionMask = null)
    {
        using var _ = Hooks(forwardHooks);
        return Run(tokens, attentionMask);
    }

    /// <summary>
    /// Runs and records the activations at every hook point whose name passes <paramref name="namesFilter"/>
    /// (all of them when null). Only what was asked for is kept.
    /// </summary>
    public (Tensor Logits, ActivationCache Cache) RunWithCache(Tensor tokens, Func<string, bool>? namesFilter = null,
        Tensor? attentionMask = null, Device? cacheDevice = null)
    {
        var names = HookDict.Keys.Where(n => namesFilter?.Invoke(n) ?? true).ToList();
        return RunWithCacheOf(tokens, names, attentionMask, cacheDevice);
    }

    /// <summary>Runs and records exactly the named activations; an unknown name is an error before anything runs.</summary>
    public (Tensor Logits, ActivationCache Cache) RunWithCache(Tensor tokens, IEnumerable<string> names,
        Tensor? attentionMask = null, Device? cacheDevice = null)
    {
        var list = names.ToList();
        foreach (var name in list) GetHookPoint(name);
        return RunWithCacheOf(tokens, list, attentionMask, cacheDevice);
    }

    (Tensor, ActivationCache) RunWithCacheOf(Tensor tokens, List<string> names, Tensor? attentionMask, Device? cacheDevice) =>
        _hooks.Record(names, () => Run(tokens, attentionMask), cacheDevice);
}
