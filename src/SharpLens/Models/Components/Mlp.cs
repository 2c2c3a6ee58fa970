using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// The feed-forward layer, plain or gated (TransformerLens's MLP and GatedMLP in one):
/// <code>
/// plain:  pre = x W_in + b_in,                                    post = act(pre)
/// gated:  pre = x W_gate,  pre_linear = x W_in,                   post = act(pre) ⊙ pre_linear + b_in
/// out = post W_out + b_out
/// </code>
/// Gated with SiLU is Llama's SwiGLU; with tanh-approximated GELU, Gemma's GeGLU.
/// </summary>
public sealed class Mlp : nn.Module
{
    readonly Activation _act;
    public Parameter? W_gate; // [d_model, d_mlp], gated MLPs only
    public Parameter W_in;  // [d_model, d_mlp]
    public Parameter b_in;  // [d_mlp]
    public Parameter W_out; // [d_mlp, d_model]
    public Parameter b_out; // [d_model]
    readonly HookPoint hook_pre, hook_post;
    readonly HookPoint? hook_pre_linear;

    public Mlp(ModelConfig cfg, string name, HookPointSet hooks) : base(name)
    {
        _act = cfg.ActFn;
        if (cfg.GatedMlp) W_gate = new Parameter(ParameterAllocation.Empty(cfg.DModel, cfg.DMlp));
        W_in = new Parameter(ParameterAllocation.Empty(cfg.DModel, cfg.DMlp));
        b_in = new Parameter(ParameterAllocation.Zeros(cfg.DMlp));
        W_out = new Parameter(ParameterAllocation.Empty(cfg.DMlp, cfg.DModel));
        b_out = new Parameter(ParameterAllocation.Zeros(cfg.DModel));
        hook_pre = hooks.Create($"{name}.hook_pre");
        if (cfg.GatedMlp) hook_pre_linear = hooks.Create($"{name}.hook_pre_linear");
        hook_post = hooks.Create($"{name}.hook_post");
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) // [batch, pos, d_model]
    {
        Tensor post;
        if (W_gate is null)
        {
            var pre = hook_pre.Apply(Affine.Apply(x, W_in, b_in)); // [batch, pos, d_mlp]
            post = hook_post.Apply(Activate(pre, _act));            // [batch, pos, d_mlp]
        }
        else
        {
            var pre = hook_pre.Apply(x.MatMul(W_gate));             // [batch, pos, d_mlp]
            var preLinear = hook_pre_linear!.Apply(x.MatMul(W_in)); // [batch, pos, d_mlp]
            post = hook_post.Apply((Activate(pre, _act) * preLinear).Plus(b_in)); // [batch, pos, d_mlp]; Plus: see HeldScalars
        }
        return Affine.Apply(post, W_out, b_out); // [batch, pos, d_model]
    }

    public static Tensor Activate(Tensor x, Activation act) => act switch
    {
        Activation.Relu => nn.functional.relu(x),
        Activation.Gelu => nn.functional.gelu(x),
        Activation.GeluNew => x.gelu(TorchSharp.Modules.GELU.Approximate.tanh),
        Activation.Silu => nn.functional.silu(x),
        _ => throw new SharpLensInternalException($"{act} has no case here."),
    };
}
