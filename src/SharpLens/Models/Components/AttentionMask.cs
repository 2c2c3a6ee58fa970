using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// Which keys each query may see: causal always, and padding keys never. Built once per forward pass.
/// </summary>
public sealed class AttentionMask
{
    readonly Tensor? _allowed; // [batch, 1, query_pos, key_pos] bool, only when there is padding

    /// <param name="padding">[batch, pos] 1 for real tokens, 0 for padding; null when every token is real.</param>
    public AttentionMask(long positions, Tensor? padding, Device device)
    {
        Positions = positions;
        if (padding is null) return;
        var causal = torch.ones(positions, positions, ScalarType.Bool, device).tril(); // [query, key]
        var keyIsReal = padding.to(ScalarType.Bool)[.., TensorIndex.None, TensorIndex.None, ..]; // [batch, 1, 1, key]
        // A padding query would otherwise see no key at all (a row of -inf gives NaN): let it see itself.
        var self = torch.eye(positions, dtype: ScalarType.Bool, device: device);
        _allowed = causal & (keyIsReal | self); // [batch, 1, query, key]
    }

    public long Positions { get; }
    public bool HasPadding => _allowed is not null;

    /// <summary>The boolean mask for scaled_dot_product_attention, or null to use its causal flag.</summary>
    public Tensor? ForFusedKernel => _allowed;

    /// <summary>Sets disallowed scores to −∞, as TransformerLens does before hook_attn_scores.</summary>
    public Tensor Apply(Tensor scores) => scores.masked_fill(Disallowed(scores.device), float.NegativeInfinity); // [batch, head, query_pos, key_pos]

    /// <summary>As <see cref="Apply"/>, writing into <paramref name="scores"/> (a fresh tensor nothing else reads).</summary>
    public Tensor ApplyInPlace(Tensor scores) => scores.masked_fill_(Disallowed(scores.device), float.NegativeInfinity); // [batch, head, query_pos, key_pos]

    Tensor Disallowed(Device device) => // [query, key] or [batch, 1, query, key]
        _allowed is null ? torch.ones(Positions, Positions, ScalarType.Bool, device).triu(1) : _allowed.logical_not();
}
