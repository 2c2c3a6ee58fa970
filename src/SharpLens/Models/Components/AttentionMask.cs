using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// Which keys each query may see: earlier positions and itself (causal; an encoder sees every position), never a padding key, and, for a local
/// (sliding-window) layer, only the last <c>window</c> positions: query q sees key k when k ≤ q and q − k &lt; window.
/// With a key/value cache the queries are the last of the keys, so query i sits at absolute position past + i.
/// Built once per forward pass (once per window size).
/// </summary>
public sealed class AttentionMask
{
    static readonly Scalar MinusInfinity = float.NegativeInfinity; // held for the process (see HeldScalars)
    readonly Tensor? _allowed; // [query, key], [batch, 1, query, key] or (not causal) [batch, 1, 1, key] bool; null for the plain causal square

    /// <param name="positions">how many new positions (queries) this forward pass computes</param>
    /// <param name="padding">[batch, past + positions] 1 for real tokens, 0 for padding; null when every token is real.</param>
    /// <param name="past">how many earlier positions a key/value cache holds</param>
    /// <param name="window">a sliding window: each query sees itself and the window − 1 positions before it</param>
    /// <param name="isCausal">false for an encoder (BERT): every query sees every real key, before or after it.</param>
    public AttentionMask(long positions, Tensor? padding, Device device, long past = 0, int? window = null, bool isCausal = true)
    {
        Positions = positions;
        Keys = past + positions;
        Window = window;
        if (!isCausal)
        {
            // An explicit mask even without padding, so the fused kernel is never told to be causal.
            var real = padding?.to(ScalarType.Bool) ?? torch.ones(1, Keys, ScalarType.Bool, device); // [batch, key]
            _allowed = real[.., TensorIndex.None, TensorIndex.None, ..]; // [batch, 1, 1, key]
            return;
        }
        if (padding is null && past == 0 && window is null) return;
        using Scalar first = past, end = past + positions, keys = Keys, width = window ?? 0; // held (see HeldScalars)
        var query = torch.arange(first, end, device: device)[.., TensorIndex.None]; // [query, 1] absolute positions
        var key = torch.arange(keys, device: device)[TensorIndex.None, ..]; // [1, key]
        var allowed = key <= query; // [query, key]
        if (window is not null) allowed = allowed & (query - key).lt(width);
        if (padding is not null)
        {
            var keyIsReal = padding.to(ScalarType.Bool)[.., TensorIndex.None, TensorIndex.None, ..]; // [batch, 1, 1, key]
            // A padding query would otherwise see no key at all (a row of -inf gives NaN): let it see itself.
            allowed = allowed & (keyIsReal | key == query); // [batch, 1, query, key]
        }
        _allowed = allowed;
    }

    public long Positions { get; }
    /// <summary>How many keys each query is compared with: the cached ones and the new ones.</summary>
    public long Keys { get; }
    public int? Window { get; }

    /// <summary>The boolean mask for scaled_dot_product_attention, or null to use its causal flag.</summary>
    public Tensor? ForFusedKernel => _allowed;

    /// <summary>Sets disallowed scores to −∞, as TransformerLens does before hook_attn_scores.</summary>
    public Tensor Apply(Tensor scores) => scores.masked_fill(Disallowed(scores.device), MinusInfinity); // [batch, head, query_pos, key_pos]

    /// <summary>As <see cref="Apply"/>, writing into <paramref name="scores"/> (a fresh tensor nothing else reads).</summary>
    public Tensor ApplyInPlace(Tensor scores) => scores.masked_fill_(Disallowed(scores.device), MinusInfinity); // [batch, head, query_pos, key_pos]

    Tensor Disallowed(Device device) => // [query, key], [batch, 1, query, key] or [batch, 1, 1, key]
        _allowed is null ? torch.ones(Positions, Positions, ScalarType.Bool, device).triu(1) : _allowed.logical_not();
}
