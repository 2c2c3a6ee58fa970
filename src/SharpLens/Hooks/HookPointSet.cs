using SharpLens.Hooks;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Hooks;

/// <summary>
/// Collects the hook points of a model as its components create them, in forward order, and does for the model what
/// every hooked model does with them: find one by name, attach and remove hooks, record a cache. The models'
/// <c>GetHookPoint</c>, <c>AddHook</c>, <c>Hooks</c>, <c>ResetHooks</c> and <c>RunWithCache</c> are these.
/// </summary>
public sealed class HookPointSet
{
    readonly Dictionary<string, HookPoint> _byName = [];

    public HookPoint Create(string name)
    {
        var hook = new HookPoint(name);
        if (!_byName.TryAdd(name, hook)) throw new SharpLensInternalException($"Hook point '{name}' was created twice.");
        return hook;
    }

    public IReadOnlyDictionary<string, HookPoint> ByName => _byName;

    /// <summary>
    /// Adds hook points that something spliced into the model owns (an SAE's), under their own names, until the handle
    /// is disposed: everything that finds hooks by name — caches, hooks, every technique — then sees them.
    /// </summary>
    public IDisposable Adopt(IReadOnlyList<HookPoint> points)
    {
        var added = new List<HookPoint>();
        foreach (var point in points)
        {
            if (!_byName.TryAdd(point.Name, point))
            {
                foreach (var p in added) _byName.Remove(p.Name);
                throw new SharpLensArgumentException(nameof(points), $"Hook point '{point.Name}' already exists; remove what added it first.");
            }
            added.Add(point);
        }
        return new Removal(() =>
        {
            foreach (var p in added)
                if (_byName.TryGetValue(p.Name, out var current) && ReferenceEquals(current, p)) _byName.Remove(p.Name);
        });
    }

    sealed class Removal(Action remove) : IDisposable
    {
        Action? _remove = remove;
        public void Dispose()
        {
            _remove?.Invoke();
            _remove = null;
        }
    }

    /// <summary>The hook point with this name; a misspelt name lists the closest valid ones.</summary>
    public HookPoint Get(string name) =>
        _byName.TryGetValue(name, out var hook) ? hook : throw new HookNotFoundException(name, _byName.Keys);

    /// <summary>Attaches a hook to every hook point whose name passes <paramref name="filter"/>.</summary>
    public IDisposable AttachWhere(Func<string, bool> filter, HookFunction hook, HookDirection direction) =>
        new Handles([.. _byName.Values.Where(h => filter(h.Name)).Select(h => h.Add(hook, direction))]);

    /// <summary>Attaches forward and backward hooks until the handle is disposed; every name is checked before any is attached.</summary>
    public IDisposable Attach(IEnumerable<(string Name, HookFunction Hook)>? forward, IEnumerable<(string Name, HookFunction Hook)>? backward)
    {
        var fwd = (forward ?? []).Select(h => (Point: Get(h.Name), h.Hook)).ToList();
        var bwd = (backward ?? []).Select(h => (Point: Get(h.Name), h.Hook)).ToList();
        return new Handles([.. fwd.Select(h => h.Point.Add(h.Hook, HookDirection.Forward)),
                            .. bwd.Select(h => h.Point.Add(h.Hook, HookDirection.Backward))]);
    }

    /// <summary>Removes every hook from every hook point.</summary>
    public void Clear()
    {
        foreach (var hook in _byName.Values) hook.Clear();
    }

    /// <summary>
    /// Runs <paramref name="run"/> with a recording hook on each of <paramref name="names"/> and returns its output with
    /// the recorded activations (detached, optionally moved to <paramref name="cacheDevice"/>); on failure nothing is kept.
    /// </summary>
    public (Tensor Output, ActivationCache Cache) Record(IEnumerable<string> names, Func<Tensor> run, Device? cacheDevice)
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
            using (Attach(names.Select(n => (n, record)), null))
                return (run(), new ActivationCache(store));
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
