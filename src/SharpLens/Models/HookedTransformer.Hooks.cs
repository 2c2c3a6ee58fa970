using TorchSharp;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models;

public sealed partial class HookedTransformer
{
    /// <summary>The hook point with this name; a misspelt name lists the closest valid ones.</summary>
    public HookPoint GetHookPoint(string name) =>
        HookDict.TryGetValue(name, out var hook) ? hook : throw new HookNotFoundException(name, HookDict.Keys);

    /// <summary>Attaches a long-lived hook; dispose the handle to remove it.</summary>
    public IDisposable AddHook(string name, HookFunction hook, HookDirection direction = HookDirection.Forward) =>
        GetHookPoint(name).Add(hook, direction);

    /// <summary>Attaches a hook to every hook point whose name passes <paramref name="filter"/>.</summary>
    public IDisposable AddHook(Func<string, bool> filter, HookFunction hook, HookDirection direction = HookDirection.Forward)
    {
        var handles = HookDict.Values.Where(h => filter(h.Name)).Select(h => h.Add(hook, direction)).ToList();
        return new Handles(handles);
    }

    /// <summary>
    /// Attaches forward and backward hooks until the returned handle is disposed, like TransformerLens's
    /// <c>with model.hooks(...)</c>: <c>using (model.Hooks(fwd, bwd)) { ...; loss.backward(); }</c>.
    /// Every name is checked before any hook is attached.
    /// </summary>
    public IDisposable Hooks(IEnumerable<(string Name, HookFunction Hook)>? forward = null,
                             IEnumerable<(string Name, HookFunction Hook)>? backward = null)
    {
        var fwd = (forward ?? []).Select(h => (Point: GetHookPoint(h.Name), h.Hook)).ToList();
        var bwd = (backward ?? []).Select(h => (Point: GetHookPoint(h.Name), h.Hook)).ToList();
        var handles = new List<IDisposable>();
        handles.AddRange(fwd.Select(h => h.Point.Add(h.Hook, HookDirection.Forward)));
        handles.AddRange(bwd.Select(h => h.Point.Add(h.Hook, HookDirection.Backward)));
        return new Handles(handles);
    }

    /// <summary>Removes every hook from every hook point.</summary>
    public void ResetHooks()
    {
        foreach (var hook in HookDict.Values) hook.Clear();
    }

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

    (Tensor, ActivationCache) RunWithCacheOf(Tensor tokens, List<string> names, Tensor? attentionMask, Device? cacheDevice)
    {
        var store = new Dictionary<string, Tensor>();
        HookFunction record = (activation, hook) =>
        {
            var kept = activation.detach();
            if (cacheDevice is not null) kept = kept.to(cacheDevice);
            store[hook.Name] = kept.DetachFromDisposeScope();
            return null;
        };
        try
        {
            using (Hooks(names.Select(n => (n, record))))
                return (Run(tokens, attentionMask), new ActivationCache(store));
        }
        catch
        {
            foreach (var t in store.Values) t.Dispose();
            throw;
        }
    }

    sealed class Handles(List<IDisposable> handles) : IDisposable
    {
        public void Dispose()
        {
            foreach (var h in handles) h.Dispose();
            handles.Clear();
        }
    }
}
