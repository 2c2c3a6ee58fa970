using TorchSharp;
using SharpLens.Hooks;
using LayerNorm = SharpLens.Models.Components.LayerNorm;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// One pre-norm residual block:
/// resid_mid = resid_pre + attn(ln1(resid_pre)),  resid_post = resid_mid + mlp(ln2(resid_mid)).
/// An attention-only block has no MLP: resid_post = resid_pre + attn(ln1(resid_pre)).
/// </summary>
public sealed class TransformerBlock : nn.Module
{
    public LayerNorm ln1;
    public Attention attn;
    public LayerNorm? ln2;
    public Mlp? mlp;
    readonly HookPoint hook_resid_pre, hook_attn_out, hook_resid_post;
    readonly HookPoint? hook_resid_mid, hook_mlp_out;

    public TransformerBlock(ModelConfig cfg, int layer, HookPointSet hooks) : base($"blocks.{layer}")
    {
        string p = $"blocks.{layer}";
        hook_resid_pre = hooks.Create($"{p}.hook_resid_pre");
        ln1 = new LayerNorm(cfg, cfg.NormalizationType, $"{p}.ln1", hooks);
        attn = new Attention(cfg, $"{p}.attn", hooks);
        hook_attn_out = hooks.Create($"{p}.hook_attn_out");
        if (!cfg.AttnOnly)
        {
            hook_resid_mid = hooks.Create($"{p}.hook_resid_mid");
            ln2 = new LayerNorm(cfg, cfg.NormalizationType, $"{p}.ln2", hooks);
            mlp = new Mlp(cfg, $"{p}.mlp", hooks);
            hook_mlp_out = hooks.Create($"{p}.hook_mlp_out");
        }
        hook_resid_post = hooks.Create($"{p}.hook_resid_post");
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionMask mask) // [batch, pos, d_model]
    {
        // The block's intermediates are freed when the block ends, not when the whole forward does, so a forward
        // holds one block's activations at a time and reuses their memory (what reference counting gives PyTorch).
        using var scope = torch.NewDisposeScope();
        var residPre = hook_resid_pre.Apply(x);
        var attnOut = hook_attn_out.Apply(attn.Forward(ln1.Forward(residPre), mask));
        if (mlp is null) return scope.MoveToOuter(hook_resid_post.Apply(residPre + attnOut));

        var residMid = hook_resid_mid!.Apply(residPre + attnOut);
        var mlpOut = hook_mlp_out!.Apply(mlp.Forward(ln2!.Forward(residMid)));
        return scope.MoveToOuter(hook_resid_post.Apply(residMid + mlpOut));
    }
}
