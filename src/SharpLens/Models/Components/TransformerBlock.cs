using TorchSharp;
using SharpLens.Hooks;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// One pre-norm residual block, sequential (GPT-2, Llama) or parallel (GPT-NeoX, <c>parallel_attn_mlp</c>):
/// <code>
/// sequential: resid_mid = resid_pre + attn(ln1(resid_pre)),  resid_post = resid_mid + mlp(ln2(resid_mid))
/// parallel:   resid_post = resid_pre + attn(ln1(resid_pre)) + mlp(ln2(resid_pre))      (no resid_mid)
/// </code>
/// With <c>use_normalization_before_and_after</c> (Gemma 2) each sublayer's output is normalised again,
/// attn_out = ln1_post(attn(...)), mlp_out = ln2_post(mlp(...)); these norms keep their weights when others are folded.
/// OLMo 2 has only these output norms (its input norms are the identity). A mixture-of-experts model (Mixtral) has a
/// <see cref="MixtureOfExperts"/> as its mlp. Local (sliding-window) layers read the local mask and, when the model
/// has them, their own rotary angles (Gemma 3).
/// An attention-only block has no MLP: resid_post = resid_pre + attn(ln1(resid_pre)).
/// </summary>
public sealed class TransformerBlock : nn.Module
{
    readonly int _layer;
    readonly bool _parallel, _local;
    public Norm ln1;
    public Norm? ln1_post;
    public Attention attn;
    public Norm? ln2;
    public Norm? ln2_post;
    [ComponentName(Name = "mlp")] nn.Module? _mlp; // an Mlp, or a MixtureOfExperts (Mixtral)
    readonly HookPoint hook_resid_pre, hook_attn_out, hook_resid_post;
    readonly HookPoint? hook_resid_mid, hook_mlp_out;

    public TransformerBlock(ModelConfig cfg, int layer, HookPointSet hooks) : base($"blocks.{layer}")
    {
        string p = $"blocks.{layer}";
        (_layer, _parallel, _local) = (layer, cfg.ParallelAttnMlp && !cfg.AttnOnly, cfg.WindowOf(layer) is not null);
        // Norms after a sublayer write to the residual stream, so nothing can absorb their weights: they stay RMS / LN.
        var after = cfg.SublayerOutputNormalization;
        hook_resid_pre = hooks.Create($"{p}.hook_resid_pre");
        ln1 = Norm.Create(cfg, cfg.NormalizationType, $"{p}.ln1", hooks);
        attn = new Attention(cfg, $"{p}.attn", hooks);
        if (after is { } postAttn) ln1_post = Norm.Create(cfg, postAttn, $"{p}.ln1_post", hooks);
        hook_attn_out = hooks.Create($"{p}.hook_attn_out");
        if (!cfg.AttnOnly)
        {
            if (!_parallel) hook_resid_mid = hooks.Create($"{p}.hook_resid_mid");
            ln2 = Norm.Create(cfg, cfg.NormalizationType, $"{p}.ln2", hooks);
            _mlp = cfg.IsMoe ? new MixtureOfExperts(cfg, $"{p}.mlp", hooks) : new Mlp(cfg, $"{p}.mlp", hooks);
            if (after is { } postMlp) ln2_post = Norm.Create(cfg, postMlp, $"{p}.ln2_post", hooks);
            hook_mlp_out = hooks.Create($"{p}.hook_mlp_out");
        }
        hook_resid_post = hooks.Create($"{p}.hook_resid_post");
        RegisterComponents();
    }

    /// <summary>The dense MLP, or null (attention-only, or a mixture of experts).</summary>
    public Mlp? mlp => _mlp as Mlp;
    /// <summary>The mixture of experts in place of the MLP (Mixtral), or null.</summary>
    public MixtureOfExperts? moe => _mlp as MixtureOfExperts;

    public Tensor Forward(Tensor x, BlockInputs inputs) // [batch, pos, d_model]
    {
        // The block's intermediates are freed when the block ends, not when the whole forward does, so a forward
        // holds one block's activations at a time and reuses their memory (what reference counting gives PyTorch).
        using var scope = torch.NewDisposeScope();
        var mask = _local ? inputs.LocalMask! : inputs.Mask;
        var residPre = hook_resid_pre.Apply(x);
        var rotary = _local && inputs.LocalRotary is not null ? inputs.LocalRotary : inputs.Rotary;
        var attnOut = attn.Forward(ln1.Forward(residPre), mask, rotary, inputs.Cache?[_layer]); // [batch, pos, d_model]
        if (ln1_post is not null) attnOut = ln1_post.Forward(attnOut);
        attnOut = hook_attn_out.Apply(attnOut);
        if (_mlp is null) return scope.MoveToOuter(hook_resid_post.Apply(residPre.Plus(attnOut)));

        var residMid = _parallel ? residPre : hook_resid_mid!.Apply(residPre.Plus(attnOut));
        var normalized = ln2!.Forward(residMid);
        var mlpOut = _mlp is MixtureOfExperts moe ? moe.Forward(normalized) : ((Mlp)_mlp).Forward(normalized); // [batch, pos, d_model]
        if (ln2_post is not null) mlpOut = ln2_post.Forward(mlpOut);
        mlpOut = hook_mlp_out!.Apply(mlpOut);
        var residPost = _parallel ? residPre.Plus(attnOut).Plus(mlpOut) : residMid.Plus(mlpOut); // Plus: see HeldScalars
        return scope.MoveToOuter(hook_resid_post.Apply(residPost));
    }
}
