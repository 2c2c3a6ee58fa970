using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>The feed-forward layer: pre = x W_in + b_in, post = act(pre), out = post W_out + b_out.</summary>
public sealed class Mlp : nn.Module
{
    readonly Activation _act;
    public Parameter W_in;  // [d_model, d_mlp]
    public Parameter b_in;  // [d_mlp]
    public Parameter W_out; // [d_mlp, d_model]
    public Parameter b_out; // [d_model]
    readonly HookPoint hook_pre, hook_post;

    public Mlp(ModelConfig cfg, string name, HookPointSet hooks) : base(name)
    {
        _act = cfg.ActFn;
        W_in = new Parameter(torch.empty(cfg.DModel, cfg.DMlp));
        b_in = new Parameter(torch.zeros(cfg.DMlp));
        W_out = new Parameter(torch.empty(cfg.DMlp, cfg.DModel));
        b_out = new Parameter(torch.zeros(cfg.DModel));
        hook_pre = hooks.Create($"{name}.hook_pre");
        hook_post = hooks.Create($"{name}.hook_post");
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) // [batch, pos, d_model]
    {
        var pre = hook_pre.Apply(Affine.Apply(x, W_in, b_in)); // [batch, pos, d_mlp]
        var post = hook_post.Apply(Activate(pre, _act));        // [batch, pos, d_mlp]
        return Affine.Apply(post, W_out, b_out);                // [batch, pos, d_model]
    }

    public static Tensor Activate(Tensor x, Activation act) => act switch
    {
        Activation.Relu => nn.functional.relu(x),
        Activation.Gelu => nn.functional.gelu(x),
        Activation.GeluNew => x.gelu(TorchSharp.Modules.GELU.Approximate.tanh),
        Activation.Silu => nn.functional.silu(x),
        _ => throw new NotSupportedException(act.ToString()),
    };
}
