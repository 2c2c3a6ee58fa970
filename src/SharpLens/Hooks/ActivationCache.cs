using static TorchSharp.torch;

namespace SharpLens.Hooks;

/// <summary>
/// Activations recorded during a forward pass, keyed by TransformerLens hook name. Owns its tensors: dispose it
/// (or let a dispose scope do so) when done. Index by full name, <c>cache["blocks.3.hook_resid_post"]</c>, or by kind
/// and layer, <c>cache["resid_post", 3]</c>.
/// </summary>
public sealed class ActivationCache : IDisposable
{
    readonly Dictionary<string, Tensor> _activations;

    public ActivationCache(IDictionary<string, Tensor> activations) => _activations = new(activations);

    public Tensor this[string name] =>
        _activations.TryGetValue(name, out var t) ? t : throw new HookNotFoundException(name, _activations.Keys);

    /// <summary>By kind and layer: "resid_pre", "attn_out", "mlp_out", "q", "pattern", "post", "scale", ...</summary>
    public Tensor this[string kind, int layer, string? sublayer = null] => this[ActName(kind, layer, sublayer)];

    public Tensor Get(string kind, int layer, string? sublayer = null) => this[kind, layer, sublayer];

    public IReadOnlyCollection<string> Keys => _activations.Keys;
    public int Count => _activations.Count;
    public bool ContainsKey(string name) => _activations.ContainsKey(name);
    public bool TryGetValue(string name, out Tensor tensor) => _activations.TryGetValue(name, out tensor!);

    /// <summary>Bytes held by the cached tensors.</summary>
    public long TotalBytes => _activations.Values.Sum(t => t.NumberOfElements * t.ElementSize);

    /// <summary>A copy of the cache on another device (e.g. "cpu"); this cache is left as it is.</summary>
    public ActivationCache To(Device device) =>
        new(_activations.ToDictionary(kv => kv.Key, kv => kv.Value.to(device).DetachFromDisposeScope()));

    public void Dispose()
    {
        foreach (var t in _activations.Values) t.Dispose();
        _activations.Clear();
    }

    /// <summary>The full hook name for a kind of activation at a layer (see <see cref="HookNames.GetActName"/>).</summary>
    public static string ActName(string kind, int? layer = null, string? sublayer = null) => HookNames.GetActName(kind, layer, sublayer);
}
