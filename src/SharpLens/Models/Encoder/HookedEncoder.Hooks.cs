using TorchSharp;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models.Encoder;

/// <summary>Hooks and caching, with the same calls as <see cref="HookedTransformer"/>'s.</summary>
public sealed partial class HookedEncoder
{
    /// <summary>The hook point with this name; a misspelt name lists the closest valid ones.</summary>
    public HookPoint GetHookPoint(string name) =>
        HookDict.TryGetValue(name, out var hook) ? hook : throw new HookNotFoundException(name, HookDict.Keys);

    /// <summary>Attaches a long-lived hook; dispose the handle to remove it.</summary>
    public IDisposable AddHook(string name, HookFunction hook, HookDirection direction = HookDirection.Forward) =>
        GetHookPoint(name).Add(hook, direction);

    /// <summary>Attaches forward and backward hooks until the returned handle is disposed; every name is checked first.</summary>
    public IDisposable Hooks(IEnumerable<(string Name, HookFunction Hook)>? forward = null,
                             IEnumerable<(string Name, HookFunction Hook)>? backward = null)
    {
        var fwd = (forward ?? []).Select(h => (Point: GetHookPoint(h.Name), h.Hook)).ToList();
        var bwd = (backward ?? []).Select(h => (Point: GetHookPoint(h.Name), h.Hook)).ToList();
        var handles = fwd.Select(h => h.Point.Add(h.Hook, HookDirection.Forward))
            .Concat(bwd.Select(h => h.Point.Add(h.Hook, HookDirection.Backward))).ToList();
        return new Handles(handles);
    }

    /// <summary>Removes every hook from every hook point.</summary>
    public void ResetHooks()
    {
        foreach (var hook in HookDict.Values) hook.Clear();
    }

    /// <summary>Runs with these forward hooks attached for this call only; they are removed even if it throws.</summary>
    public Tensor RunWithHooks(Tensor tokens, IEnumerable<(string Name, HookFunction Hook)> forwardHooks,
        Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        using var _ = Hooks(forwardHooks);
        return Run(tokens, attentionMask, tokenTypeIds);
    }

    /// <summary>
    /// Runs (see <see cref="Run"/> for the output) and records the activations at every hook point whose name
    /// passes <paramref name="namesFilter"/> (all of them when null).
    /// </summary>
    public (Tensor Output, ActivationCache Cache) RunWithCache(Tensor tokens, Func<string, bool>? namesFilter = null,
        Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Device? cacheDevice = null)
    {
        var names = HookDict.Keys.Where(n => namesFilter?.Invoke(n) ?? true).ToList();
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
                return (Run(tokens, attentionMask, tokenTypeIds), new ActivationCache(store));
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
