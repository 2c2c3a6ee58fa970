using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models;

/// <summary>
/// The keys (after rotation) and values of every position a model has already seen, per layer, so that a forward
/// pass over the next tokens computes only their positions and attends to the cached ones (TransformerLens's
/// HookedTransformerKeyValueCache). Each forward with the cache appends to it. Dispose it to free the tensors.
/// </summary>
public sealed class KeyValueCache : IDisposable
{
    readonly KeyValueCacheEntry[] _layers;

    public KeyValueCache(int nLayers) => _layers = [.. Enumerable.Range(0, nLayers).Select(_ => new KeyValueCacheEntry())];

    public KeyValueCacheEntry this[int layer] => _layers[layer];
    public int Layers => _layers.Length;
    /// <summary>How many positions are cached.</summary>
    public long Length => _layers[0].Length;

    public void Dispose()
    {
        foreach (var entry in _layers) entry.Dispose();
    }
}

/// <summary>One layer's cached keys and values, [batch, pos, n_key_value_heads, d_head] each.</summary>
public sealed class KeyValueCacheEntry : IDisposable
{
    Tensor? _keys, _values;

    public long Length => _keys?.shape[1] ?? 0;

    /// <summary>Appends the new positions' keys and values and returns all of them, cached ones first.</summary>
    public (Tensor Keys, Tensor Values) Append(Tensor keys, Tensor values) // [batch, new_pos, kv_head, d_head]
    {
        var allKeys = _keys is null ? keys.detach() : torch.cat([_keys, keys.detach()], 1); // [batch, pos, kv_head, d_head]
        var allValues = _values is null ? values.detach() : torch.cat([_values, values.detach()], 1); // [batch, pos, kv_head, d_head]
        Dispose();
        // The cache outlives the forward pass that filled it, so its tensors leave every dispose scope.
        (_keys, _values) = (allKeys.DetachFromDisposeScope(), allValues.DetachFromDisposeScope());
        return (_keys, _values);
    }

    public void Dispose()
    {
        _keys?.Dispose();
        _values?.Dispose();
        (_keys, _values) = (null, null);
    }
}
