using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// Causal self-attention with per-head weights, as in TransformerLens:
/// <code>
/// q = x W_Q[h] + b_Q[h],  k = x W_K[g] + b_K[g],  v = x W_V[g] + b_V[g]     (g = the key/value head of query head h)
/// q, k = q_norm(q), k_norm(k)                          (use_qk_norm: RMSNorm per head, or over all heads at once)
/// q, k = rotate(q), rotate(k)                           (rotary models)
/// scores = q kᵀ / attn_scale,  [c·tanh(scores / c)],  masked,  pattern = softmax(scores)
/// z = pattern v,   out = Σ_h z[h] W_O[h] + b_O
/// </code>
/// Keys and values are stored once, [n_kv_heads, ...], and query head h uses key/value head h / (n_heads / n_kv_heads);
/// hook_k and hook_v carry the n_kv_heads heads. Without grouped-query attention n_kv_heads = n_heads (g = h) and the
/// parameters are named W_K, W_V, b_K, b_V; with it _W_K, _W_V, _b_K, _b_V (TransformerLens's names), while W_K … then
/// give the stored heads repeated for their groups. When nothing hooks the scores or the pattern and there is no soft cap, the
/// fused scaled-dot-product kernel computes z directly.
/// </summary>
public sealed class Attention : nn.Module
{
    readonly int _nHeads, _nKvHeads, _dHead, _dModel;
    readonly bool _useAttnResult, _grouped;
    readonly double _scale;
    readonly double? _softCap;
    readonly Scalar _heldScale, _heldRescale; // _scale, and √d_head / _scale for the fused kernel, held (see HeldScalars)
    readonly RotaryEmbedding? _rotary;

    public Parameter W_Q; // [n_heads, d_model, d_head]
    public Parameter b_Q; // [n_heads, d_head]
    Parameter _keyWeights, _valueWeights; // [n_kv_heads, d_model, d_head]: stored once, expanded to the query heads at use
    Parameter _keyBiases, _valueBiases;   // [n_kv_heads, d_head]
    public Parameter W_O; // [n_heads, d_head, d_model]
    public Parameter b_O; // [d_model]
    public RMSNorm? q_norm; // over [d_head] per head (Qwen 3, Gemma 3) or [n_heads·d_head] (OLMo 2)
    public RMSNorm? k_norm; // over [d_head] per head or [n_kv_heads·d_head]

    readonly HookPoint hook_q, hook_k, hook_v, hook_attn_scores, hook_pattern, hook_z;
    readonly HookPoint? hook_rot_q, hook_rot_k, hook_result;

    public Attention(ModelConfig cfg, string name, HookPointSet hooks) : base(name)
    {
        (_nHeads, _nKvHeads, _dHead, _dModel, _useAttnResult) = (cfg.NHeads, cfg.KeyValueHeads, cfg.DHead, cfg.DModel, cfg.UseAttnResult);
        (_scale, _softCap) = (cfg.AttentionScale, cfg.AttnScoresSoftCap);
        (_heldScale, _heldRescale) = (_scale, Math.Sqrt(_dHead) / _scale);
        W_Q = new Parameter(ParameterAllocation.Empty(_nHeads, _dModel, _dHead));
        b_Q = new Parameter(ParameterAllocation.Zeros(_nHeads, _dHead));
        _keyWeights = new Parameter(ParameterAllocation.Empty(_nKvHeads, _dModel, _dHead));
        _valueWeights = new Parameter(ParameterAllocation.Empty(_nKvHeads, _dModel, _dHead));
        _keyBiases = new Parameter(ParameterAllocation.Zeros(_nKvHeads, _dHead));
        _valueBiases = new Parameter(ParameterAllocation.Zeros(_nKvHeads, _dHead));
        W_O = new Parameter(ParameterAllocation.Empty(_nHeads, _dHead, _dModel));
        b_O = new Parameter(ParameterAllocation.Zeros(_dModel));
        hook_k = hooks.Create($"{name}.hook_k");
        hook_q = hooks.Create($"{name}.hook_q");
        hook_v = hooks.Create($"{name}.hook_v");
        if (cfg.UseQkNorm)
        {
            q_norm = new RMSNorm(cfg, Normalization.RMS, $"{name}.q_norm", hooks, cfg.QkNormPerHead ? _dHead : _nHeads * _dHead);
            k_norm = new RMSNorm(cfg, Normalization.RMS, $"{name}.k_norm", hooks, cfg.QkNormPerHead ? _dHead : _nKvHeads * _dHead);
        }
        if (cfg.PositionalEmbeddingType == PositionalEmbedding.Rotary)
        {
            _rotary = new RotaryEmbedding(cfg); // used only to rotate: the angles come from the model
            hook_rot_k = hooks.Create($"{name}.hook_rot_k");
            hook_rot_q = hooks.Create($"{name}.hook_rot_q");
        }
        hook_z = hooks.Create($"{name}.hook_z");
        hook_attn_scores = hooks.Create($"{name}.hook_attn_scores");
        hook_pattern = hooks.Create($"{name}.hook_pattern");
        if (_useAttnResult) hook_result = hooks.Create($"{name}.hook_result");
        _grouped = cfg.NKeyValueHeads is not null;
        RegisterComponents();
    }

    /// <param name="x">[batch, pos, d_model], the new positions only when a cache is given</param>
    /// <param name="rotary">cos and sin of the new positions' rotary angles (rotary models)</param>
    /// <param name="cache">this layer's cached keys and values; the new ones are appended</param>
    public Tensor Forward(Tensor x, AttentionMask mask, (Tensor Cos, Tensor Sin)? rotary = null, KeyValueCacheEntry? cache = null)
    {
        long batch = x.shape[0], pos = x.shape[1];
        // q, k and v are separate tensors, not views of one fused product: a cached or hooked q then owns just
        // its own memory, and reading the weights afresh each call means an edit to W_Q takes effect at once.
        var q = hook_q.Apply(PerHead(x, W_Q, b_Q)); // [batch, pos, head, d_head]
        var k = hook_k.Apply(PerHead(x, _keyWeights, _keyBiases)); // [batch, pos, kv_head, d_head]
        var v = hook_v.Apply(PerHead(x, _valueWeights, _valueBiases)); // [batch, pos, kv_head, d_head]
        if (q_norm is not null)
        {
            q = QkNorm(q_norm, q); // [batch, pos, head, d_head]
            k = QkNorm(k_norm!, k); // [batch, pos, kv_head, d_head]
        }
        if (_rotary is not null)
        {
            var (cos, sin) = rotary ?? throw new ArgumentNullException(nameof(rotary), "A rotary model's attention needs the positions' rotary angles.");
            q = hook_rot_q!.Apply(_rotary.Rotate(q, cos, sin)); // [batch, pos, head, d_head]
            k = hook_rot_k!.Apply(_rotary.Rotate(k, cos, sin)); // [batch, pos, kv_head, d_head]
        }
        if (cache is not null) (k, v) = cache.Append(k, v); // [batch, past + pos, kv_head, d_head]
        if (_nKvHeads != _nHeads)
        {
            k = k.repeat_interleave(_nHeads / _nKvHeads, dim: 2); // [batch, key_pos, head, d_head]
            v = v.repeat_interleave(_nHeads / _nKvHeads, dim: 2); // [batch, key_pos, head, d_head]
        }

        Tensor z;
        if (hook_attn_scores.HasHooks || hook_pattern.HasHooks || _softCap is not null)
        {
            // The scores, [head, query_pos, key_pos] per sequence, are by far the largest activation, so each pass over
            // them costs more than the products around them: the scale goes into q (d_head wide) before the product,
            // masking writes into the fresh product, and one batched product per side does the rest.
            var qHeads = q.div(_heldScale).transpose(1, 2); // [batch, head, query_pos, d_head]
            var scores = qHeads.MatMul(k.permute(0, 2, 3, 1)); // [batch, head, query_pos, key_pos]
            if (_softCap is double cap) scores = scores.div_(cap).tanh_().mul_(cap);
            scores = hook_attn_scores.Apply(mask.ApplyInPlace(scores));
            var pattern = hook_pattern.Apply(scores.softmax(-1)); // [batch, head, query_pos, key_pos]
            z = pattern.MatMul(v.transpose(1, 2)).transpose(1, 2); // [batch, pos, head, d_head]
        }
        else
        {
            // The kernel divides by sqrt(d_head); a model with another scale has its queries rescaled to match.
            double rescale = Math.Sqrt(_dHead) / _scale;
            var fused = mask.ForFusedKernel;
            z = nn.functional.scaled_dot_product_attention((rescale == 1 ? q : q.mul(_heldRescale)).transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                attn_mask: fused, is_casual: fused is null).transpose(1, 2); // [batch, pos, head, d_head]
        }
        z = hook_z.Apply(z);

        if (_useAttnResult)
        {
            var result = hook_result!.Apply(torch.einsum("bphd,hdm->bphm", z, W_O)); // [batch, pos, head, d_model]
            return result.sum(2).Plus(b_O); // [batch, pos, d_model]; Plus: see HeldScalars
        }
        return Affine.Apply(z.reshape(batch, pos, _nHeads * _dHead), W_O.reshape(_nHeads * _dHead, _dModel), b_O); // [batch, pos, d_model]
    }

    /// <summary>
    /// The parameters in the order of the maths (which is the order a seed initialises them in), under TransformerLens's
    /// names: the key/value heads are W_K, W_V, b_K, b_V without grouped-query attention and _W_K, _W_V, _b_K, _b_V with
    /// it. The names are the only difference: one tensor each, [n_kv_heads, ...], either way.
    /// </summary>
    protected override void RegisterComponents()
    {
        if (_internal_params.Count > 0) return; // once: the block registering this module calls it again
        string kv = _grouped ? "_" : "";
        foreach (var (name, p) in new[] { ("W_Q", W_Q), ("b_Q", b_Q), (kv + "W_K", _keyWeights), (kv + "W_V", _valueWeights),
                                          (kv + "b_K", _keyBiases), (kv + "b_V", _valueBiases), ("W_O", W_O), ("b_O", b_O) })
            register_parameter(name, p);
        if (q_norm is not null) register_module("q_norm", q_norm);
        if (k_norm is not null) register_module("k_norm", k_norm);
    }

    // TorchSharp's .to(dtype/device) replaces each parameter through the public property of its registered name, so
    // both names of a key/value tensor lead to the one field, and the setter registers the replacement under its name.

    /// <summary>Key weights as stored: [n_kv_heads, d_model, d_head], which is [n_heads, ...] without GQA.</summary>
    public Parameter _W_K { get => _keyWeights; private set => ConditionallyRegisterParameter(nameof(_W_K), _keyWeights = value); }
    /// <summary>Value weights as stored: [n_kv_heads, d_model, d_head].</summary>
    public Parameter _W_V { get => _valueWeights; private set => ConditionallyRegisterParameter(nameof(_W_V), _valueWeights = value); }
    /// <summary>Key biases as stored: [n_kv_heads, d_head].</summary>
    public Parameter _b_K { get => _keyBiases; private set => ConditionallyRegisterParameter(nameof(_b_K), _keyBiases = value); }
    /// <summary>Value biases as stored: [n_kv_heads, d_head].</summary>
    public Parameter _b_V { get => _valueBiases; private set => ConditionallyRegisterParameter(nameof(_b_V), _valueBiases = value); }

    /// <summary>Key weights per query head, [n_heads, d_model, d_head]: with GQA each stored head repeated for its group.</summary>
    public Tensor W_K { get => PerQueryHead(_keyWeights); private set => ConditionallyRegisterParameter(nameof(W_K), _keyWeights = (Parameter)value); }
    /// <summary>Value weights per query head, [n_heads, d_model, d_head].</summary>
    public Tensor W_V { get => PerQueryHead(_valueWeights); private set => ConditionallyRegisterParameter(nameof(W_V), _valueWeights = (Parameter)value); }
    /// <summary>Key biases per query head, [n_heads, d_head].</summary>
    public Tensor b_K { get => PerQueryHead(_keyBiases); private set => ConditionallyRegisterParameter(nameof(b_K), _keyBiases = (Parameter)value); }
    /// <summary>Value biases per query head, [n_heads, d_head].</summary>
    public Tensor b_V { get => PerQueryHead(_valueBiases); private set => ConditionallyRegisterParameter(nameof(b_V), _valueBiases = (Parameter)value); }

    /// <summary>A query or key norm: per head over d_head, or over the heads side by side (OLMo 2's norm of the whole projection).</summary>
    static Tensor QkNorm(RMSNorm norm, Tensor x) => // x: [batch, pos, head, d_head]
        norm.w!.shape[0] == x.shape[^1] ? norm.Forward(x) : norm.Forward(x.flatten(2)).view(x.shape);

    /// <summary>x W[h] + b[h] for every head h at once, as one matrix product with the heads side by side.</summary>
    Tensor PerHead(Tensor x, Tensor W, Tensor b) // x: [batch, pos, d_model], W: [head, d_model, d_head]
    {
        long heads = W.shape[0];
        return Affine.Apply(x, W.permute(1, 0, 2).reshape(_dModel, heads * _dHead), b.flatten())
            .view(x.shape[0], x.shape[1], heads, _dHead); // [batch, pos, head, d_head]
    }

    Tensor PerQueryHead(Parameter stored) => // [n_kv_heads, ...] → [n_heads, ...]
        _nKvHeads == _nHeads ? stored : stored.repeat_interleave(_nHeads / _nKvHeads, dim: 0);
}
