using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// Multi-head causal self-attention with per-head weights, as in TransformerLens:
/// <code>
/// q = x W_Q[h] + b_Q[h],  k = x W_K[h] + b_K[h],  v = x W_V[h] + b_V[h]
/// scores = q kᵀ / sqrt(d_head)  (masked),   pattern = softmax(scores)
/// z = pattern v,   out = Σ_h z[h] W_O[h] + b_O
/// </code>
/// When nothing hooks the scores or the pattern, the fused scaled-dot-product kernel computes z directly.
/// </summary>
public sealed class Attention : nn.Module
{
    readonly int _nHeads, _dHead, _dModel;
    readonly bool _useAttnResult;

    public Parameter W_Q, W_K, W_V; // [n_heads, d_model, d_head]
    public Parameter b_Q, b_K, b_V; // [n_heads, d_head]
    public Parameter W_O;           // [n_heads, d_head, d_model]
    public Parameter b_O;           // [d_model]

    readonly HookPoint hook_q, hook_k, hook_v, hook_attn_scores, hook_pattern, hook_z;
    readonly HookPoint? hook_result;

    public Attention(ModelConfig cfg, string name, HookPointSet hooks) : base(name)
    {
        (_nHeads, _dHead, _dModel, _useAttnResult) = (cfg.NHeads, cfg.DHead, cfg.DModel, cfg.UseAttnResult);
        W_Q = new Parameter(torch.empty(_nHeads, _dModel, _dHead));
        W_K = new Parameter(torch.empty(_nHeads, _dModel, _dHead));
        W_V = new Parameter(torch.empty(_nHeads, _dModel, _dHead));
        b_Q = new Parameter(torch.zeros(_nHeads, _dHead));
        b_K = new Parameter(torch.zeros(_nHeads, _dHead));
        b_V = new Parameter(torch.zeros(_nHeads, _dHead));
        W_O = new Parameter(torch.empty(_nHeads, _dHead, _dModel));
        b_O = new Parameter(torch.zeros(_dModel));
        hook_k = hooks.Create($"{name}.hook_k");
        hook_q = hooks.Create($"{name}.hook_q");
        hook_v = hooks.Create($"{name}.hook_v");
        hook_z = hooks.Create($"{name}.hook_z");
        hook_attn_scores = hooks.Create($"{name}.hook_attn_scores");
        hook_pattern = hooks.Create($"{name}.hook_pattern");
        if (_useAttnResult) hook_result = hooks.Create($"{name}.hook_result");
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionMask mask) // x: [batch, pos, d_model]
    {
        long batch = x.shape[0], pos = x.shape[1];
        // q, k and v are separate tensors, not views of one fused product: a cached or hooked q then owns just
        // its own memory, and reading the weights afresh each call means an edit to W_Q takes effect at once.
        var q = hook_q.Apply(PerHead(x, W_Q, b_Q)); // [batch, pos, head, d_head]
        var k = hook_k.Apply(PerHead(x, W_K, b_K)); // [batch, pos, head, d_head]
        var v = hook_v.Apply(PerHead(x, W_V, b_V)); // [batch, pos, head, d_head]

        Tensor z;
        if (hook_attn_scores.HasHooks || hook_pattern.HasHooks)
        {
            // Scaling and masking write into the fresh product: the scores are [head, pos, pos] per sequence,
            // by far the largest activation, and two more copies of them would double the time and memory here.
            var scores = torch.einsum("bqhd,bkhd->bhqk", q, k).div_(Math.Sqrt(_dHead)); // [batch, head, query_pos, key_pos]
            scores = hook_attn_scores.Apply(mask.ApplyInPlace(scores));
            var pattern = hook_pattern.Apply(scores.softmax(-1)); // [batch, head, query_pos, key_pos]
            z = torch.einsum("bhqk,bkhd->bqhd", pattern, v); // [batch, pos, head, d_head]
        }
        else
        {
            var fused = mask.ForFusedKernel;
            z = nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                attn_mask: fused, is_casual: fused is null).transpose(1, 2); // [batch, pos, head, d_head]
        }
        z = hook_z.Apply(z);

        if (_useAttnResult)
        {
            var result = hook_result!.Apply(torch.einsum("bphd,hdm->bphm", z, W_O)); // [batch, pos, head, d_model]
            return result.sum(2) + b_O; // [batch, pos, d_model]
        }
        return Affine.Apply(z.reshape(batch, pos, _nHeads * _dHead), W_O.reshape(_nHeads * _dHead, _dModel), b_O); // [batch, pos, d_model]
    }

    /// <summary>x W[h] + b[h] for every head h at once, as one matrix product with the heads side by side.</summary>
    Tensor PerHead(Tensor x, Tensor W, Tensor b) => // x: [batch, pos, d_model], W: [head, d_model, d_head]
        Affine.Apply(x, W.permute(1, 0, 2).reshape(_dModel, _nHeads * _dHead), b.flatten())
            .view(x.shape[0], x.shape[1], _nHeads, _dHead); // [batch, pos, head, d_head]
}
