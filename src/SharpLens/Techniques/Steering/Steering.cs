using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>Where along the sequence a steering vector is added.</summary>
public enum SteeringPositions
{
    /// <summary>Every position (activation addition as in Turner et al. and Rimsky et al.).</summary>
    All,
    /// <summary>Only the last position of each forward pass (the one that predicts the next token).</summary>
    Last,
}

/// <summary>
/// Activation steering: add coefficient × direction to an activation while the model runs. The direction can be a
/// contrastive mean difference (<see cref="ContrastiveVector"/>), a probe's direction, an SAE decoder row — anything
/// with the hook's trailing shape (d_model for residual hooks).
/// </summary>
public static class Steering
{
    /// <summary>
    /// Contrastive activation addition's vector: mean activation at <paramref name="hook"/> over the positive prompts
    /// minus over the negative prompts, each read at its last real token: [d] (the hook's trailing shape).
    /// </summary>
    /// <param name="positive">[n₊, pos] tokens</param>
    /// <param name="negative">[n₋, pos′] tokens</param>
    public static Tensor ContrastiveVector(HookedRootModule model, string hook, Tensor positive, Tensor negative,
        Tensor? positiveMask = null, Tensor? negativeMask = null)
    {
        model.GetHookPoint(hook);
        using var scope = NewDisposeScope();
        var plus = ProbeSweep.Activations(model, positive, [hook], positiveMask)[hook]; // [n₊, d]
        var minus = ProbeSweep.Activations(model, negative, [hook], negativeMask)[hook]; // [n₋, d]
        return (plus.mean([0]) - minus.mean([0])).MoveToOuterDisposeScope(); // [d]
    }

    /// <summary>
    /// Adds coefficient × direction at <paramref name="hook"/> on every forward pass (generation included) until the
    /// returned handle is disposed: <c>using (Steering.Apply(model, hook, v, 4)) model.Generate(...);</c>
    /// </summary>
    public static IDisposable Apply(HookedRootModule model, string hook, Tensor direction, double coefficient,
        SteeringPositions positions = SteeringPositions.All)
    {
        var point = model.GetHookPoint(hook);
        var vector = direction.detach().clone().DetachFromDisposeScope();
        return new SteeringHandle(model.AddHook(hook, (activation, h) =>
        {
            var trailing = activation.shape[2..];
            if (!vector.shape.SequenceEqual(trailing))
                throw new ArgumentException(
                    $"The steering direction has shape {ShapeText.Of(vector.shape)} but '{h.Name}' carries {ShapeText.Of(activation.shape)}; " +
                    $"give a direction of shape [{string.Join(", ", trailing)}].", nameof(direction));
            var delta = (vector.to(activation.dtype).to(activation.device) * coefficient).expand(trailing); // [...]
            if (positions == SteeringPositions.All) return activation + delta;
            var steered = activation.clone();
            steered[.., -1] += delta;
            return steered;
        }), vector);
    }

    /// <summary>Logits [batch, pos, d_vocab] with the steering applied for this call only.</summary>
    public static Tensor Run(HookedRootModule model, Tensor tokens, string hook, Tensor direction, double coefficient,
        SteeringPositions positions = SteeringPositions.All)
    {
        using var _ = Apply(model, hook, direction, coefficient, positions);
        return model.Run(tokens);
    }

    sealed class SteeringHandle(IDisposable hook, Tensor vector) : IDisposable
    {
        public void Dispose() { hook.Dispose(); vector.Dispose(); }
    }
}
