using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// RMSNorm as in Llama and TransformerLens: scale = sqrt(mean(x²) + ε), output (x / scale) ⊙ w (RMS) or x / scale
/// (RMSPre, after the weight was folded into the next layer). No mean is subtracted and there is no bias.
/// Gemma's (1 + w) variant is loaded as w + 1, so at run time every RMSNorm is this one.
/// </summary>
public sealed class RMSNorm : Norm
{
    readonly Scalar _eps; // held for the module's life (see HeldScalars)
    readonly HookPoint hook_scale, hook_normalized;

    /// <param name="length">how many values are normalised together (d_model unless given: a query/key norm's d_head or n_heads·d_head)</param>
    public RMSNorm(ModelConfig cfg, Normalization kind, string name, HookPointSet hooks, int? length = null) : base(name)
    {
        if (kind is not (Normalization.RMS or Normalization.RMSPre)) throw new ArgumentException($"RMSNorm '{name}' cannot be of kind {kind}.", nameof(kind));
        _eps = cfg.Eps;
        if (kind == Normalization.RMS) w = new Parameter(ParameterAllocation.Ones(length ?? cfg.DModel));
        hook_scale = hooks.Create($"{name}.hook_scale");
        hook_normalized = hooks.Create($"{name}.hook_normalized");
        RegisterComponents();
    }

    public override Tensor Forward(Tensor x) // [..., length]
    {
        // Hugging Face normalises in float32 whatever the model's dtype, then casts back before the weight.
        var x32 = x.to(ScalarType.Float32);
        var scale = hook_scale.Apply(x32.pow(HeldScalars.Two).mean([-1], keepdim: true).add(_eps, HeldScalars.One).sqrt()); // [batch, pos, 1]
        var normalized = hook_normalized.Apply((x32 / scale).to(x.dtype)); // [batch, pos, d_model]
        return w is null ? normalized : normalized * w;
    }
}
