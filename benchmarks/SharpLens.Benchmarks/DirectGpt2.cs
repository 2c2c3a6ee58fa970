using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>
/// The baseline: GPT-2's forward written straight on TorchSharp, as nanoGPT writes it, with no hook points.
/// Weights are laid out the Hugging Face way (one fused c_attn [d_model, 3·d_model] per layer) and copied once,
/// at construction, from a <see cref="HookedTransformer"/>, so both compute the same function.
/// </summary>
public sealed class DirectGpt2 : IDisposable
{
    sealed record Layer(Tensor Ln1W, Tensor Ln1B, Tensor CAttnW, Tensor CAttnB, Tensor CProjW, Tensor CProjB,
                        Tensor Ln2W, Tensor Ln2B, Tensor FcW, Tensor FcB, Tensor MlpProjW, Tensor MlpProjB);

    readonly Tensor _wte, _wpe, _lnFW, _lnFB, _wU, _bU;
    readonly List<Layer> _layers = [];
    readonly long _dModel, _nHeads, _dHead;
    readonly double _eps;

    public DirectGpt2(HookedTransformer model)
    {
        var cfg = model.Config;
        if (cfg.NormalizationType != Normalization.LN || cfg.AttnOnly || cfg.ActFn != Activation.GeluNew || model.pos_embed is null || cfg.UseAttnResult)
            throw new ArgumentException("DirectGpt2 mirrors GPT-2 only: LN, learned positions, gelu_new, an MLP in every block, no hook_result.", nameof(model));
        (_dModel, _nHeads, _dHead, _eps) = (cfg.DModel, cfg.NHeads, cfg.DHead, cfg.Eps);

        using var _ = no_grad();
        Tensor Keep(Tensor t) => t.detach().contiguous().clone().DetachFromDisposeScope();
        using var scope = NewDisposeScope();
        _wte = Keep(model.embed.W_E);
        _wpe = Keep(model.pos_embed.W_pos);
        foreach (var block in model.blocks)
        {
            var a = block.attn;
            // Per-head [head, d_model, d_head] → columns head-major within each of q, k, v: [d_model, 3·head·d_head].
            Tensor Columns(Tensor W) => W.permute(1, 0, 2).reshape(_dModel, _nHeads * _dHead);
            var cAttnW = cat([Columns(a.W_Q), Columns(a.W_K), Columns(a.W_V)], 1);                 // [d_model, 3·d_model]
            var cAttnB = cat([a.b_Q.flatten(), a.b_K.flatten(), a.b_V.flatten()]);                 // [3·d_model]
            _layers.Add(new Layer(Keep(block.ln1.w!), Keep(block.ln1.b!), Keep(cAttnW), Keep(cAttnB),
                Keep(a.W_O.reshape(_nHeads * _dHead, _dModel)), Keep(a.b_O),
                Keep(block.ln2!.w!), Keep(block.ln2.b!), Keep(block.mlp!.W_in), Keep(block.mlp.b_in),
                Keep(block.mlp.W_out), Keep(block.mlp.b_out)));
        }
        _lnFW = Keep(model.ln_final.w!);
        _lnFB = Keep(model.ln_final.b!);
        _wU = Keep(model.unembed.W_U);
        _bU = Keep(model.unembed.b_U);
    }

    /// <summary>Logits [batch, pos, d_vocab] for token ids [batch, pos].</summary>
    public Tensor Forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        long B = tokens.shape[0], T = tokens.shape[1], C = _dModel;
        var x = _wte.index_select(0, tokens.flatten()) + _wpe.narrow(0, 0, T).repeat(B, 1); // [B·T, C]
        foreach (var l in _layers)
        {
            using var layerScope = NewDisposeScope(); // free each layer's intermediates as it ends, as PyTorch would
            var h = nn.functional.layer_norm(x, [C], l.Ln1W, l.Ln1B, _eps);
            var qkv = addmm(l.CAttnB, h, l.CAttnW, beta: 1, alpha: 1).view(B, T, 3 * C);                          // [B, T, 3C]
            var parts = qkv.split(C, 2);
            var q = parts[0].view(B, T, _nHeads, _dHead).transpose(1, 2);                        // [B, nh, T, hs]
            var k = parts[1].view(B, T, _nHeads, _dHead).transpose(1, 2);                        // [B, nh, T, hs]
            var v = parts[2].view(B, T, _nHeads, _dHead).transpose(1, 2);                        // [B, nh, T, hs]
            var y = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);       // [B, nh, T, hs]
            y = y.transpose(1, 2).reshape(B * T, C);                                              // [B·T, C]
            x = x + addmm(l.CProjB, y, l.CProjW, beta: 1, alpha: 1);
            h = nn.functional.layer_norm(x, [C], l.Ln2W, l.Ln2B, _eps);
            var fc = addmm(l.FcB, h, l.FcW, beta: 1, alpha: 1).gelu(TorchSharp.Modules.GELU.Approximate.tanh);     // [B·T, 4C]
            x = layerScope.MoveToOuter(x + addmm(l.MlpProjB, fc, l.MlpProjW, beta: 1, alpha: 1));
        }
        x = nn.functional.layer_norm(x, [C], _lnFW, _lnFB, _eps);
        return addmm(_bU, x, _wU, beta: 1, alpha: 1).view(B, T, -1).MoveToOuterDisposeScope();                    // [B, T, d_vocab]
    }

    public void Dispose()
    {
        foreach (var t in new[] { _wte, _wpe, _lnFW, _lnFB, _wU, _bU }) t.Dispose();
        foreach (var l in _layers)
            foreach (var t in new[] { l.Ln1W, l.Ln1B, l.CAttnW, l.CAttnB, l.CProjW, l.CProjB, l.Ln2W, l.Ln2B, l.FcW, l.FcB, l.MlpProjW, l.MlpProjB })
                t.Dispose();
        _layers.Clear();
    }
}
