using static TorchSharp.torch;

namespace SharpLens.Techniques.MaxActivating;

/// <summary>
/// One scalar per (sequence, position) read from a hook: a neuron (one feature of the activation) or the projection of
/// the activation onto a direction (a probe, an SAE decoder row, a steering vector). Trailing dimensions of the hook's
/// activation [batch, pos, ...] are flattened, so a feature of <c>blocks.0.attn.hook_z</c> [batch, pos, head, d_head] is
/// head · d_head + i.
/// </summary>
public sealed class ActivationTarget
{
    public string Hook { get; }
    /// <summary>The feature read, when this is a neuron.</summary>
    public int? Index { get; }
    /// <summary>The direction projected on, when this is a direction [features].</summary>
    public Tensor? Direction { get; }

    ActivationTarget(string hook, int? index, Tensor? direction) => (Hook, Index, Direction) = (hook, index, direction);

    /// <summary>MLP neuron <paramref name="index"/> of layer <paramref name="layer"/>, after the activation function (<c>blocks.{l}.mlp.hook_post</c>).</summary>
    public static ActivationTarget Neuron(int layer, int index) => Feature($"blocks.{layer}.mlp.hook_post", index);

    /// <summary>Feature <paramref name="index"/> of the (flattened) activation at <paramref name="hook"/>.</summary>
    public static ActivationTarget Feature(string hook, int index)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, $"Feature index at {hook} must be non-negative.");
        return new(hook, index, null);
    }

    /// <summary>The dot product of the activation at <paramref name="hook"/> with <paramref name="direction"/> [features] (not normalised).</summary>
    public static ActivationTarget AlongDirection(string hook, Tensor direction)
    {
        if (direction.dim() != 1)
            throw new ArgumentException($"A direction at {hook} must be a vector [features]; got {ShapeText.Of(direction.shape)}.", nameof(direction));
        return new(hook, null, direction.detach().clone().DetachFromDisposeScope());
    }

    /// <summary>[batch, pos] from the hook's activation [batch, pos, ...].</summary>
    public Tensor Read(Tensor activation)
    {
        if (activation.dim() < 2)
            throw new ArgumentException($"The activation at {Hook} is {ShapeText.Of(activation.shape)}; a target needs [batch, pos, ...].", nameof(activation));
        var flat = activation.dim() == 2 ? activation.unsqueeze(-1) : activation.flatten(2); // [batch, pos, features]
        long features = flat.shape[2];
        if (Index is int i)
        {
            if (i >= features)
                throw new ArgumentOutOfRangeException(nameof(Index), i, $"{Hook} has {features} features per position; index {i} is out of range.");
            return flat[.., .., i]; // [batch, pos]
        }
        if (Direction!.shape[0] != features)
            throw new ArgumentException($"The direction has {Direction.shape[0]} entries but {Hook} has {features} features per position.", nameof(Direction));
        return flat.MatMul(Direction.to(flat.dtype).to(flat.device)); // [batch, pos]
    }

    public override string ToString() => Index is int i ? $"{Hook}[{i}]" : $"{Hook} · direction";
}
