using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// A normalisation layer of any <see cref="Normalization"/> kind: LayerNorm (LN, LNPre), RMSNorm (RMS, RMSPre), or
/// the identity (None). <see cref="Create"/> picks the class; every kind exposes its scale and output as
/// <c>hook_scale</c> and <c>hook_normalized</c>, as in TransformerLens.
/// </summary>
public abstract class Norm : nn.Module
{
    public Parameter? w; // [d_model], absent for the *Pre and None kinds
    public Parameter? b; // [d_model], LayerNorm (LN) only

    protected Norm(string name) : base(name) { }

    public abstract Tensor Forward(Tensor x); // [batch, pos, d_model] → [batch, pos, d_model]

    public static Norm Create(ModelConfig cfg, Normalization kind, string name, HookPointSet hooks) => kind switch
    {
        Normalization.RMS or Normalization.RMSPre => new RMSNorm(cfg, kind, name, hooks),
        _ => new LayerNorm(cfg, kind, name, hooks),
    };
}
