using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Hooks;

/// <summary>
/// A function called with an activation (or, for backward hooks, its gradient) and the hook point it passes.
/// Return a tensor of the same shape to replace it, or null to leave it as it is.
/// The activation is freed when its block's forward ends (the embeddings' when the forward ends); to keep it
/// longer, take it out of the dispose scope (<c>activation.detach().DetachFromDisposeScope()</c>) and dispose it yourself.
/// </summary>
public delegate Tensor? HookFunction(Tensor activation, HookPoint hook);

/// <summary>Whether a hook sees the activation on the way forward or its gradient on the way back.</summary>
public enum HookDirection { Forward, Backward }

/// <summary>
/// A named place where an activation is born. With no hooks attached it returns its input untouched, so an
/// unused hook point costs one branch. Names follow TransformerLens: <c>blocks.3.attn.hook_pattern</c>.
/// </summary>
public sealed class HookPoint(string name)
{
    readonly List<HookFunction> _forward = [];
    readonly List<HookFunction> _backward = [];

    public string Name { get; } = name;

    /// <summary>The block this hook sits in, or null for embeddings and the final norm.</summary>
    public int? Layer { get; } = ParseLayer(name);

    public bool HasForwardHooks => _forward.Count > 0;
    public bool HasHooks => _forward.Count > 0 || _backward.Count > 0;

    /// <summary>Passes an activation through every hook attached here.</summary>
    public Tensor Apply(Tensor activation)
    {
        if (_forward.Count == 0 && _backward.Count == 0) return activation;
        foreach (var hook in _forward)
        {
            var replacement = hook(activation, this);
            if (replacement is null) continue;
            if (!replacement.shape.SequenceEqual(activation.shape))
                throw new ArgumentException(
                    $"A hook at '{Name}' returned shape {ShapeText.Of(replacement.shape)} for an activation of " +
                    $"shape {ShapeText.Of(activation.shape)}; a replacing hook must keep the shape.", "hook");
            activation = replacement;
        }
        if (_backward.Count > 0 && activation.requires_grad)
            activation = GradientTap.Apply(activation, this);
        return activation;
    }

    internal IDisposable Add(HookFunction hook, HookDirection direction)
    {
        var list = direction == HookDirection.Forward ? _forward : _backward;
        list.Add(hook);
        return new Removal(() => list.Remove(hook));
    }

    internal Tensor? RunBackwardHooks(Tensor gradient)
    {
        Tensor? result = null;
        foreach (var hook in _backward)
        {
            var replacement = hook(result ?? gradient, this);
            if (replacement is not null) result = replacement;
        }
        return result;
    }

    internal void Clear() { _forward.Clear(); _backward.Clear(); }

    public override string ToString() => Name;

    static int? ParseLayer(string name)
    {
        if (!name.StartsWith("blocks.", StringComparison.Ordinal)) return null;
        int end = name.IndexOf('.', 7);
        return end > 7 && int.TryParse(name.AsSpan(7, end - 7), out int layer) ? layer : null;
    }

    sealed class Removal(Action remove) : IDisposable
    {
        Action? _remove = remove;
        public void Dispose() { _remove?.Invoke(); _remove = null; }
    }
}

/// <summary>An identity in the forward pass whose backward hands the gradient to the hook point's backward hooks.</summary>
sealed class GradientTap : autograd.SingleTensorFunction<GradientTap>
{

    public override string Name => "SharpLensGradientTap";

    public static Tensor Apply(Tensor activation, HookPoint hook) => apply(activation, hook);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("hook", vars[1]);
        return ((Tensor)vars[0]).alias();
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var hook = (HookPoint)ctx.get_data("hook");
        return [hook.RunBackwardHooks(gradOutput) ?? gradOutput, null!];
    }
}
