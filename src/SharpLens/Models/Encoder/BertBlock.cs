using TorchSharp;
using SharpLens.Hooks;
using SharpLens.Models.Components;
using LayerNorm = SharpLens.Models.Components.LayerNorm;
using static TorchSharp.torch;

namespace SharpLens.Models.Encoder;

/// <summary>
/// One post-norm BERT block, as TransformerLens's BertBlock (the norms come after each sublayer):
/// resid_mid = resid_pre + attn(resid_pre),  resid_post = ln1(resid_mid) + mlp(ln1(resid_mid)),
/// normalized_resid_post = ln2(resid_post), which is the next block's resid_pre.
/// </summary>
public sealed class BertBlock : nn.Module
{
    public Attention attn;
    public LayerNorm ln1;
    public Mlp mlp;
    public LayerNorm ln2;
    readonly HookPoint hook_resid_pre, hook_attn_out, hook_resid_mid, hook_mlp_out, hook_resid_post, hook_normalized_resid_post;

    public BertBlock(ModelConfig cfg, int layer, HookPointSet hooks) : base($"blocks.{layer}")
    {
        string p = $"blocks.{layer}";
        hook_resid_pre = hooks.Create($"{p}.hook_resid_pre");
        attn = new Attention(cfg, $"{p}.attn", hooks);
        hook_attn_out = hooks.Create($"{p}.hook_attn_out");
        hook_resid_mid = hooks.Create($"{p}.hook_resid_mid");
        ln1 = new LayerNorm(cfg, Normalization.LN, $"{p}.ln1", hooks);
        mlp = new Mlp(cfg, $"{p}.mlp", hooks);
        hook_mlp_out = hooks.Create($"{p}.hook_mlp_out");
        hook_resid_post = hooks.Create($"{p}.hook_resid_post");
        ln2 = new LayerNorm(cfg, Normalization.LN, $"{p}.ln2", hooks);
        hook_normalized_resid_post = hooks.Create($"{p}.hook_normalized_resid_post");
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionMask mask) // [batch, pos, d_model]
    {
        // As in TransformerBlock: the block's intermediates are freed when it ends.
        using var scope = torch.NewDisposeScope();
        var residPre = hook_resid_pre.Apply(x);
        var attnOut = hook_attn_out.Apply(attn.Forward(residPre, mask));
        var normalizedMid = ln1.Forward(hook_resid_mid.Apply(residPre.Plus(attnOut))); // Plus: see HeldScalars
        var mlpOut = hook_mlp_out.Apply(mlp.Forward(normalizedMid));
        var residPost = hook_resid_post.Apply(normalizedMid.Plus(mlpOut));
        return scope.MoveToOuter(hook_normalized_resid_post.Apply(ln2.Forward(residPost)));
    }
}
