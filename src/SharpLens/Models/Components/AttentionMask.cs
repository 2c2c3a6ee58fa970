using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// Which keys each query may see: causal (decoder) or all (encoder), and padding keys never. Built once per forward pass.
/// </summary>
public sealed class AttentionMask
{
    readonly Tensor? _allowed; // [batch, 1, query_pos, key_pos] bool (causal, with padding) or [batch, 1, 1, key_pos] (not causal)

    /// <param name="padding">[batch, pos] 1 for real tokens, 0 for padding; null when every token is real.</param>
    /// <param name="isCausal">false for an encoder (BERT): every query sees every real key, before or after it.</param>
    public AttentionMask(long positions, Tensor? padding, Device device, bool isCausal = true)
    {
        Positions = positions;
        HasPadding = padding is not null;
        if (!isCausal)
        {
            // An explicit mask even without padding, so the fused kernel is never told to be causal.
            var real = padding?.to(ScalarType.Bool) ?? torch.ones(1, positions, ScalarType.Bool, device); // [batch, key]
            _allowed = real[.., TensorIndex.None, TensorIndex.None, ..]; // [batch, 1, 1, key]
            return;
        }
        if (padding is null) return;
        var causal = torch.ones(positions, positions, ScalarType.Bool, device).tril(); // [query, key]
        var keyIsReal = padding.to(ScalarType.Bool)[.., TensorIndex.None, TensorIndex.None, ..]; // [batch, 1, 1, key]
        // A padding query would otherwise see no key at all (a row of -inf gives NaN): let it see itself.
        var self = torch.eye(positions, dtype: ScalarType.Bool, device: device);
        _allowed = causal & (keyIsReal | self); // [batch, 1, query, key]
    }

    public long Positions { get; }
    public bool HasPadding { get; }

    /// <summary>The boolean mask for scaled_dot_product_attention, or null to use its causal flag.</summary>
    public Tensor? ForFusedKernel => _allowed;

    /// <summary>Sets disallowed scores to −∞, as TransformerLens does before hook_attn_scores.</summary>
    public Tensor Apply(Tensor scores) => scores.masked_fill(Disallowed(scores.device), float.NegativeInfinity); // [batch, head, query_pos, key_pos]

    /// <summary>As <see cref="Apply"/>, writing into <paramref name="scores"/> (a fresh tensor nothing else reads).</summary>
    public Tensor ApplyInPlace(Tensor scores) => scores.masked_fill_(Disallowed(scores.device), float.NegativeInfinity); // [batch, head, query_pos, key_pos]

    Tensor Disallowed(Device device) => // [query, key], [batch, 1, query, key] or [batch, 1, 1, key]
        _allowed is null ? torch.ones(Positions, Positions, ScalarType.Bool, device).triu(1) : _allowed.logical_not();
}
