using TorchSharp;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models.Encoder;

/// <summary>Hooks and caching, with the same calls as <see cref="HookedTransformer"/>'s.</summary>
public sealed partial class HookedEncoder
{
    /// <summary>The hook point with this name; a misspelt name lists the closest valid ones.</summary>
    public HookPoint GetHookPoint(string name) => _hooks.Get(name);

    /// <summary>Attaches a long-lived hook; dispose the handle to remove it.</summary>
    public IDisposable AddHook(string name, HookFunction hook, HookDirection direction = HookDirection.Forward) =>
        GetHookPoint(name).Add(hook, direction);

    /// <summary>Attaches forward and backward hooks until the returned handle is disposed; every name is checked first.</summary>
    public IDisposable Hooks(IEnumerable<(string Name, HookFunction Hook)>? forward = null,
                             IEnumerable<(string Name, HookFunction Hook)>? backward = null) => _hooks.Attach(forward, backward);

    /// <summary>Removes every hook from every hook point.</summary>
    public void ResetHooks() => _hooks.Clear();

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
        return _hooks.Record(names, () => Run(tokens, attentionMask, tokenTypeIds), cacheDevice);
    }
}
