using SharpLens.Hooks;

namespace SharpLens.Models.Components;

/// <summary>Collects the hook points of a model as its components create them, in forward order.</summary>
public sealed class HookPointSet
{
    readonly Dictionary<string, HookPoint> _byName = [];

    public HookPoint Create(string name)
    {
        var hook = new HookPoint(name);
        if (!_byName.TryAdd(name, hook)) throw new InvalidOperationException($"Hook point '{name}' was created twice.");
        return hook;
    }

    public IReadOnlyDictionary<string, HookPoint> ByName => _byName;
}
