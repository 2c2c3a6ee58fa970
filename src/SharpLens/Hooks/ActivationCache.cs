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

    /// <summary>
    /// The full hook name for a kind of activation at a layer, as TransformerLens's <c>utils.get_act_name</c> builds it:
    /// ("resid_pre", 3) → "blocks.3.hook_resid_pre"; ("pattern", 0) → "blocks.0.attn.hook_pattern";
    /// ("post", 1) → "blocks.1.mlp.hook_post"; ("scale", 2, "ln1") → "blocks.2.ln1.hook_scale".
    /// </summary>
    public static string ActName(string kind, int? layer = null, string? sublayer = null)
    {
        kind = kind switch { "attn" => "pattern", "attn_logits" => "attn_scores", _ => kind };
        if (kind is "embed" or "pos_embed") return $"hook_{kind}";
        if (layer is null)
        {
            if (kind is "scale" or "normalized" && (sublayer ?? "ln_final") == "ln_final") return $"ln_final.hook_{kind}";
            throw new ArgumentException($"Activation kind '{kind}' needs a layer.", nameof(layer));
        }
        return kind switch
        {
            "resid_pre" or "resid_mid" or "resid_post" or "attn_out" or "mlp_out" => $"blocks.{layer}.hook_{kind}",
            "q" or "k" or "v" or "z" or "result" or "attn_scores" or "pattern" or "rot_q" or "rot_k" => $"blocks.{layer}.attn.hook_{kind}",
            "pre" or "post" or "mid" or "pre_linear" => $"blocks.{layer}.mlp.hook_{kind}",
            "scale" or "normalized" => $"blocks.{layer}.{sublayer ?? throw new ArgumentException($"Say which norm '{kind}' is from: ln1 or ln2.", nameof(sublayer))}.hook_{kind}",
            _ => throw new ArgumentException($"Unknown activation kind '{kind}'.", nameof(kind)),
        };
    }
}
