using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// LayerNorm as TransformerLens writes it, so its scale can be cached and frozen:
/// x̂ = (x − mean(x)) / scale, scale = sqrt(var(x) + ε), output x̂ ⊙ w + b (LN) or x̂ alone (LNPre).
/// With <see cref="Normalization.None"/> it is the identity and has no hooks.
/// </summary>
public sealed class LayerNorm : Norm
{
    readonly Normalization _kind;
    readonly double _eps;
    readonly Scalar _heldEps; // ε for the explicit path, held for the module's life (see HeldScalars)
    readonly long _dModel;
    readonly HookPoint? hook_scale, hook_normalized;

    public LayerNorm(ModelConfig cfg, Normalization kind, string name, HookPointSet hooks) : base(name)
    {
        if (kind is not (Normalization.LN or Normalization.LNPre or Normalization.None)) throw new ArgumentException($"LayerNorm '{name}' cannot be of kind {kind}; use Norm.Create.", nameof(kind));
        _kind = kind;
        (_eps, _heldEps) = (cfg.Eps, cfg.Eps);
        _dModel = cfg.DModel;
        if (kind == Normalization.LN)
        {
            w = new Parameter(ParameterAllocation.Ones(cfg.DModel));
            b = new Parameter(ParameterAllocation.Zeros(cfg.DModel));
        }
        if (kind != Normalization.None)
        {
            hook_scale = hooks.Create($"{name}.hook_scale");
            hook_normalized = hooks.Create($"{name}.hook_normalized");
        }
        RegisterComponents();
    }

    public override Tensor Forward(Tensor x) // [batch, pos, d_model]
    {
        if (_kind == Normalization.None) return x;
        if (!hook_scale!.HasHooks && !hook_normalized!.HasHooks)
            return nn.functional.layer_norm(x, [_dModel], w, b, _eps); // the fused kernel: same maths, one pass

        // Half-precision activations are centred and scaled in float32 (as the fused kernel accumulates), then cast back.
        var dtype = x.dtype;
        var wide = dtype is ScalarType.BFloat16 or ScalarType.Float16 ? x.to(ScalarType.Float32) : x;
        wide = wide - wide.mean([-1], keepdim: true);
        var scale = hook_scale.Apply(wide.pow(HeldScalars.Two).mean([-1], keepdim: true).add(_heldEps, HeldScalars.One).sqrt().to(dtype)); // [batch, pos, 1]
        x = (wide / scale.to(wide.dtype)).to(dtype);
        if (w is not null) x = (x * w).Plus(b!); // Plus: see HeldScalars
        return hook_normalized!.Apply(x);
    }
}
