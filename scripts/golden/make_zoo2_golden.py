#!/usr/bin/python3
"""Golden fixtures for model zoo 2 (Qwen 3, Gemma 3, Phi-3, OLMo 2, Mixtral) and Hugging Face's rotary scalings
(linear, dynamic, yarn, longrope), in transformers v4 and v5 config spellings.

Run with Debian's python3 (torch + numpy; `transformers` is not needed and not used):

    /usr/bin/python3 scripts/golden/make_zoo2_golden.py

Same recipe, token ids and file format as make_zoo_golden.py (whose file writers and shared maths this script
imports): random weights in Hugging Face's names and shapes from a fixed seed, rounded to the stored dtype; config.json
+ model.safetensors + golden.json (logits of this script's own float64 forward on the rounded weights) per folder under
tests/SharpLens.Tests/Fixtures/zoo/. Each forward below is written from the equations of transformers'
modeling_<family>.py and modeling_rope_utils.py, not from SharpLens.

Semantics implemented (HF = transformers):

Rotary frequencies, rotary dim r, base b, f_i = b^(-2i/r) (i < r/2); cos/sin of pos * f, both times an attention factor:
  default   f_i.
  linear    f_i / factor.
  dynamic   L = max(seq_len, max_position_embeddings), b' = b * (factor * L / mpe - (factor - 1)) ** (r / (r - 2)),
            f_i = b'^(-2i/r). seq_len = largest position + 1 of the forward (HF dynamic_rope_update).
  yarn      if rope_scaling has original_max_position_embeddings L0: factor := mpe / L0, else L0 = mpe.
            attention factor: given, or (mscale, mscale_all_dim both set) m(factor, mscale) / m(factor, mscale_all_dim),
            else m(factor), m(s, k) = 1 if s <= 1 else 0.1 k ln s + 1. beta_fast 32, beta_slow 1 by default.
            d(n) = r ln(L0 / (2 pi n)) / (2 ln b); low = floor(d(beta_fast)), high = ceil(d(beta_slow)) (truncate),
            clamped to [0, r - 1]; ramp_i = clamp((i - low) / (high - low), 0, 1); extrapolation e_i = 1 - ramp_i;
            f'_i = f_i / factor * (1 - e_i) + f_i * e_i.
  longrope  L0 = top-level original_max_position_embeddings (else mpe), factor = mpe / L0 when that is given;
            attention factor sqrt(1 + ln(factor) / ln(L0)) (1 if factor <= 1) unless given; f_i / ext_i with
            ext = long_factor when seq_len > L0 else short_factor. partial_rotary_factor p: r = int(head_dim * p).
  v5 configs carry these in rope_parameters (with rope_theta inside), Gemma 3's per layer type
  ({"full_attention": ..., "sliding_attention": ...}); they read exactly as the v4 rope_theta + rope_scaling.
Qwen 3 (qwen3-*): Llama, plus q = RMSNorm_{q_norm}(q) and k = RMSNorm_{k_norm}(k) per head (weight [head_dim]),
  after the projections and before RoPE; head_dim 16 with hidden 32 and 4 heads.
OLMo 2 (olmo2-*): no input norms; x = x + post_attention_layernorm(attn(x)); x = x + post_feedforward_layernorm(mlp(x));
  q_norm over the whole q projection [n_heads * head_dim], k_norm over [n_kv * head_dim], before splitting heads and RoPE.
Phi-3 (phi3-*): qkv_proj [(h + 2 kv) * hd, d] rows = q | k | v; gate_up_proj [2 * mlp, d] rows = gate | up;
  mlp = down(silu(gate) * up); sliding_window (all layers) when set: key k visible from q iff q - w < k <= q.
Gemma 3 (gemma3-*): Gemma 2's (1 + w) RMSNorms, sandwich norms, embedding * sqrt(hidden) as a float32 (HF casts it to
  the weights' dtype: float32 when the model is loaded in float32, as SharpLens computes), scale query_pre_attn_scalar ** -0.5, plus per-head (1 + w) q_norm / k_norm before RoPE; layer i is global iff
  (i + 1) % sliding_window_pattern == 0 (or layer_types); local layers: window sliding_window, RoPE base
  rope_local_base_freq, unscaled; global: rope_theta with rope_scaling. Soft caps null (not applied).
Multimodal Gemma 3 (gemma3mm-*, as gemma-3-4b and larger ship): model_type "gemma3", the text model's settings in
  text_config, where a field left out takes Gemma3TextConfig's default (GEMMA3_TEXT_DEFAULTS below, transformers'
  values); text weights under language_model.model.* (lm_head, when untied, language_model.lm_head.weight), beside a
  vision tower and projector (vision_tower.*, multi_modal_projector.*) that a text-only forward never reads.
Mixtral (mixtral-*): Mistral attention; per token: logits = gate(x) [E]; p = softmax(logits); top-k of p, renormalised
  to sum 1; out = sum_j p_j * w2(silu(w1 x) * w3 x) of expert e_j.

Self-checks: each scaling changes the logits against the unscaled config; dynamic leaves sequences within
max_position_embeddings unchanged; longrope uses short factors up to L0 and long ones beyond; v5 configs give the v4
logits; MoE top-k = all experts with renormalisation equals the dense softmax-weighted sum; causality; batch = rows.
"""
import copy
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_zoo_golden as z  # noqa: E402  (file writers, RMSNorm, attention, masks, activations)

SINGLE, BATCH = z.SINGLE, z.BATCH


# ---- rotary frequencies from a config, float64 -----------------------------------------------------------------

def rope_params(config, layer_type="full_attention"):
    """(rope_theta, scaling dict or None) for a layer type, from v4 (rope_theta, rope_scaling) or v5 (rope_parameters)."""
    params = config.get("rope_parameters")
    if params is not None:
        if "full_attention" in params or "sliding_attention" in params:
            params = params[layer_type]
        theta = params.get("rope_theta", config.get("rope_theta"))
        kind = params.get("rope_type", params.get("type", "default"))
        return theta, (None if kind == "default" else params)
    scaling = config.get("rope_scaling")
    if scaling is not None and scaling.get("rope_type", scaling.get("type")) == "default":
        scaling = None
    return config.get("rope_theta", 10000.0), scaling


def frequencies(config, r, theta, scaling, seq_len):
    """(f [r/2] float64, attention factor)."""
    i = torch.arange(0, r // 2, dtype=torch.float64)
    f = theta ** (-2 * i / r)
    if scaling is None:
        return f, 1.0
    kind = scaling.get("rope_type", scaling.get("type"))
    mpe = config["max_position_embeddings"]
    if kind == "linear":
        return f / scaling["factor"], 1.0
    if kind == "dynamic":
        factor = scaling["factor"]
        length = max(seq_len, mpe)
        base = theta * (factor * length / mpe - (factor - 1)) ** (r / (r - 2))
        return base ** (-2 * i / r), 1.0
    if kind == "yarn":
        factor = scaling["factor"]
        original = mpe
        if "original_max_position_embeddings" in scaling:
            original = scaling["original_max_position_embeddings"]
            factor = mpe / original

        def m(s, k=1.0):
            return 1.0 if s <= 1 else 0.1 * k * math.log(s) + 1.0
        attention = scaling.get("attention_factor")
        if attention is None:
            ms, msa = scaling.get("mscale"), scaling.get("mscale_all_dim")
            attention = m(factor, ms) / m(factor, msa) if ms and msa else m(factor)
        fast, slow = scaling.get("beta_fast") or 32, scaling.get("beta_slow") or 1

        def dim_of(rotations):
            return r * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(theta))
        low, high = dim_of(fast), dim_of(slow)
        if scaling.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, r - 1)
        if low == high:
            high += 0.001
        ramp = ((i - low) / (high - low)).clamp(0, 1)
        extrapolation = 1 - ramp
        return f / factor * (1 - extrapolation) + f * extrapolation, attention
    if kind == "longrope":
        original = config.get("original_max_position_embeddings")
        factor = mpe / original if original else scaling["factor"]
        original = original or mpe
        attention = scaling.get("attention_factor")
        if attention is None:
            attention = 1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(original))
        ext = torch.tensor(scaling["long_factor"] if seq_len > original else scaling["short_factor"], dtype=torch.float64)
        return f / ext, attention
    raise ValueError(kind)


def rotate(x, r, f, attention):
    """Rotate-half RoPE of the first r components. x: [batch, head, pos, d_head]; f: [r/2]."""
    pos = x.shape[-2]
    angle = torch.arange(pos, dtype=torch.float64)[:, None] * f[None, :]  # [pos, r/2]
    cos = torch.cat([angle.cos(), angle.cos()], -1) * attention
    sin = torch.cat([angle.sin(), angle.sin()], -1) * attention
    rot, keep = x[..., :r], x[..., r:]
    half = r // 2
    rotated = torch.cat([-rot[..., half:], rot[..., :half]], -1)
    return torch.cat([rot * cos + rotated * sin, keep], -1)


# ---- one forward for every new family ---------------------------------------------------------------------------

def is_local(config, layer):
    kind = config["model_type"]
    if "layer_types" in config:
        return config["layer_types"][layer] == "sliding_attention"
    if kind == "gemma3_text":
        return (layer + 1) % config.get("sliding_window_pattern", 6) != 0
    if kind in ("phi3", "mixtral", "mistral"):
        return config.get("sliding_window") is not None
    if kind == "qwen3":
        return bool(config.get("use_sliding_window")) and layer >= config.get("max_window_layers", 0)
    return False


def forward(config, w, tokens, no_windows=False):
    kind = config["model_type"]
    gemma = kind == "gemma3_text"
    d, heads = config["hidden_size"], config["num_attention_heads"]
    kv = config.get("num_key_value_heads") or heads
    hd = config.get("head_dim") or d // heads
    eps = config["rms_norm_eps"]
    offset = 1.0 if gemma else 0.0
    act = config["hidden_activation"] if gemma else config["hidden_act"]
    r = int(hd * config.get("partial_rotary_factor", 1.0))
    scale = config.get("query_pre_attn_scalar", 256) ** -0.5 if gemma else hd ** -0.5
    w = {k: t.to(torch.float64) for k, t in w.items()}
    tokens = torch.tensor(tokens, dtype=torch.long)
    batch, pos = tokens.shape
    norm = lambda x, name: z.rms_norm(x, w[name], eps, offset)  # noqa: E731
    x = w["model.embed_tokens.weight"][tokens]
    if gemma:
        x = x * torch.tensor(d ** 0.5, dtype=torch.float32).to(torch.float64)  # the scale in float32, the compute dtype
    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        local = is_local(config, l) and not no_windows
        a = x if kind == "olmo2" else norm(x, p + "input_layernorm.weight")
        if kind == "phi3":
            qkv = z.linear(a, w[p + "self_attn.qkv_proj.weight"])
            q, k, v = qkv.split([heads * hd, kv * hd, kv * hd], -1)
        else:
            q, k, v = (z.linear(a, w[p + f"self_attn.{n}_proj.weight"]) for n in ("q", "k", "v"))
        if kind == "olmo2":  # the whole projection at once
            q, k = norm(q, p + "self_attn.q_norm.weight"), norm(k, p + "self_attn.k_norm.weight")
        q, k, v = z.split_heads(q, heads), z.split_heads(k, kv), z.split_heads(v, kv)  # [batch, head, pos, hd]
        if kind in ("qwen3", "gemma3_text"):  # per head
            q, k = norm(q, p + "self_attn.q_norm.weight"), norm(k, p + "self_attn.k_norm.weight")
        if gemma and local:
            theta, scaling = rope_params(config, "sliding_attention") if "rope_parameters" in config else (config.get("rope_local_base_freq", 10000.0), None)
        else:
            theta, scaling = rope_params(config, "full_attention")
            if theta is None:
                theta = 1e6 if gemma else 10000.0
        f, attention = frequencies(config, r, theta, scaling, pos)
        q, k = rotate(q, r, f, attention), rotate(k, r, f, attention)
        window = config["sliding_window"] if local else None
        zz = z.merge_heads(z.attention(q, k, v, scale, z.causal(pos, window)))
        attn_out = z.linear(zz, w[p + "self_attn.o_proj.weight"])
        if gemma:
            x = x + norm(attn_out, p + "post_attention_layernorm.weight")
            m = norm(x, p + "pre_feedforward_layernorm.weight")
        elif kind == "olmo2":
            x = x + norm(attn_out, p + "post_attention_layernorm.weight")
            m = x
        else:
            x = x + attn_out
            m = norm(x, p + "post_attention_layernorm.weight")
        if kind == "mixtral":
            mlp_out = moe(config, w, p, m)
        else:
            if kind == "phi3":
                gate, up = z.linear(m, w[p + "mlp.gate_up_proj.weight"]).chunk(2, -1)
            else:
                gate, up = z.linear(m, w[p + "mlp.gate_proj.weight"]), z.linear(m, w[p + "mlp.up_proj.weight"])
            mlp_out = z.linear(z.activation(act, gate) * up, w[p + "mlp.down_proj.weight"])
        if gemma or kind == "olmo2":
            mlp_out = norm(mlp_out, p + "post_feedforward_layernorm.weight")
        x = x + mlp_out
    x = norm(x, "model.norm.weight")
    unembed = w["model.embed_tokens.weight"] if config["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ unembed.T


def moe(config, w, p, m):
    """Mixtral's sparse MoE, token by token."""
    experts, k = config["num_local_experts"], config["num_experts_per_tok"]
    out = torch.zeros_like(m)
    gate = w[p + "block_sparse_moe.gate.weight"]
    for b in range(m.shape[0]):
        for t in range(m.shape[1]):
            x = m[b, t]
            probs = torch.softmax(gate @ x, -1)
            top, chosen = torch.topk(probs, k)
            top = top / top.sum()
            for weight, e in zip(top.tolist(), chosen.tolist()):
                e_ = f"{p}block_sparse_moe.experts.{e}."
                hidden = z.activation(config["hidden_act"], w[e_ + "w1.weight"] @ x) * (w[e_ + "w3.weight"] @ x)
                out[b, t] += weight * (w[e_ + "w2.weight"] @ hidden)
    return out


def weights(config, seed):
    kind = config["model_type"]
    gemma = kind == "gemma3_text"
    draw = z.Draw(seed)
    d, heads, vocab = config["hidden_size"], config["num_attention_heads"], config["vocab_size"]
    kv = config.get("num_key_value_heads") or heads
    hd = config.get("head_dim") or d // heads
    mlp = config["intermediate_size"]
    norm_weight = lambda n=d: draw(n, std=0.3, mean=0.0 if gemma else 1.0)  # noqa: E731
    w = {"model.embed_tokens.weight": draw(vocab, d, std=0.3 if gemma else 0.5)}
    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        if kind != "olmo2":
            w[p + "input_layernorm.weight"] = norm_weight()
        if kind == "phi3":
            w[p + "self_attn.qkv_proj.weight"] = draw((heads + 2 * kv) * hd, d, std=0.25)
        else:
            w[p + "self_attn.q_proj.weight"] = draw(heads * hd, d, std=0.25)
            w[p + "self_attn.k_proj.weight"] = draw(kv * hd, d, std=0.25)
            w[p + "self_attn.v_proj.weight"] = draw(kv * hd, d, std=0.25)
        w[p + "self_attn.o_proj.weight"] = draw(d, heads * hd, std=0.2)
        if kind in ("qwen3", "gemma3_text"):
            w[p + "self_attn.q_norm.weight"] = norm_weight(hd)
            w[p + "self_attn.k_norm.weight"] = norm_weight(hd)
        if kind == "olmo2":
            w[p + "self_attn.q_norm.weight"] = norm_weight(heads * hd)
            w[p + "self_attn.k_norm.weight"] = norm_weight(kv * hd)
        w[p + "post_attention_layernorm.weight"] = norm_weight()
        if gemma:
            w[p + "pre_feedforward_layernorm.weight"] = norm_weight()
        if gemma or kind == "olmo2":
            w[p + "post_feedforward_layernorm.weight"] = norm_weight()
        if kind == "mixtral":
            w[p + "block_sparse_moe.gate.weight"] = draw(config["num_local_experts"], d, std=0.6)
            for e in range(config["num_local_experts"]):
                e_ = f"{p}block_sparse_moe.experts.{e}."
                w[e_ + "w1.weight"] = draw(mlp, d, std=0.25)
                w[e_ + "w2.weight"] = draw(d, mlp, std=0.2)
                w[e_ + "w3.weight"] = draw(mlp, d, std=0.25)
        elif kind == "phi3":
            w[p + "mlp.gate_up_proj.weight"] = draw(2 * mlp, d, std=0.25)
            w[p + "mlp.down_proj.weight"] = draw(d, mlp, std=0.2)
        else:
            w[p + "mlp.gate_proj.weight"] = draw(mlp, d, std=0.25)
            w[p + "mlp.up_proj.weight"] = draw(mlp, d, std=0.25)
            w[p + "mlp.down_proj.weight"] = draw(d, mlp, std=0.2)
    w["model.norm.weight"] = norm_weight()
    if not config["tie_word_embeddings"]:
        w["lm_head.weight"] = draw(vocab, d, std=0.3)
    return w


# ---- configurations ---------------------------------------------------------------------------------------------

def base(model_type, arch, **over):
    c = {"architectures": [arch], "model_type": model_type, "hidden_size": 32, "intermediate_size": 64,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
         "hidden_act": "silu", "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
         "rope_scaling": None, "attention_bias": False, "attention_dropout": 0.0, "tie_word_embeddings": False,
         "vocab_size": 101, "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.02, "use_cache": True}
    c.update(over)
    return c


def llama(**over):
    return base("llama", "LlamaForCausalLM", mlp_bias=False, pretraining_tp=1, tie_word_embeddings=True, **over)


def to_v5(config):
    """The same model as transformers v5 writes it: rope_parameters (rope_theta inside) and dtype."""
    c = {k: v for k, v in config.items() if k not in ("rope_scaling", "rope_theta", "torch_dtype")}
    params = dict(config.get("rope_scaling") or {"rope_type": "default"})
    params["rope_theta"] = config.get("rope_theta", 10000.0)
    c["rope_parameters"] = params
    c["dtype"] = config.get("torch_dtype", "float32")
    return c


LONG_SHORT = [1.0, 1.25, 1.5, 2.0]     # r/2 = 4 numbers: head_dim 16, partial_rotary_factor 0.5 -> r = 8
LONG_LONG = [1.0, 2.0, 4.0, 8.0]

CONFIGS = [
    ("qwen3-tied-f32", 201, "F32", base("qwen3", "Qwen3ForCausalLM", head_dim=16, tie_word_embeddings=True,
                                        max_window_layers=2, sliding_window=None, use_sliding_window=False,
                                        rope_theta=1000000.0)),
    ("qwen3-yarn-bf16", 202, "BF16", base("qwen3", "Qwen3ForCausalLM", head_dim=16, num_key_value_heads=4,
                                          max_position_embeddings=64, rope_theta=10000.0, max_window_layers=2,
                                          sliding_window=None, use_sliding_window=False,
                                          rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                                        "original_max_position_embeddings": 16})),
    ("gemma3-f32", 203, "F32", base("gemma3_text", "Gemma3ForCausalLM", num_hidden_layers=3, head_dim=16,
                                    num_key_value_heads=1, hidden_act="gelu_pytorch_tanh",
                                    hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=24, sliding_window=4,
                                    sliding_window_pattern=3, rope_theta=1000000.0, rope_local_base_freq=10000.0,
                                    rope_scaling={"rope_type": "linear", "factor": 2.0}, attn_logit_softcapping=None,
                                    final_logit_softcapping=None, cache_implementation="hybrid",
                                    tie_word_embeddings=True, pad_token_id=0, bos_token_id=2, eos_token_id=[1, 106])),
    ("gemma3-v5-bf16", 204, "BF16", {k: v for k, v in base(
        "gemma3_text", "Gemma3ForCausalLM", num_hidden_layers=4, head_dim=16, hidden_act="gelu_pytorch_tanh",
        hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=16, sliding_window=3,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        rope_parameters={"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 500000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
        attn_logit_softcapping=None, final_logit_softcapping=None, tie_word_embeddings=True, pad_token_id=0,
        bos_token_id=2, eos_token_id=1, dtype="bfloat16").items() if k not in ("rope_theta", "rope_scaling")}),
    ("phi3-f32", 205, "F32", base("phi3", "Phi3ForCausalLM", sliding_window=5, original_max_position_embeddings=64,
                                  embd_pdrop=0.0, resid_pdrop=0.0, pad_token_id=0)),
    ("phi3-longrope-f32", 206, "F32", base("phi3", "Phi3ForCausalLM", head_dim=16, num_key_value_heads=4,
                                           partial_rotary_factor=0.5, max_position_embeddings=32,
                                           original_max_position_embeddings=8, tie_word_embeddings=True,
                                           sliding_window=None, embd_pdrop=0.0, resid_pdrop=0.0,
                                           rope_scaling={"type": "longrope", "short_factor": LONG_SHORT,
                                                         "long_factor": LONG_LONG})),
    ("olmo2-f32", 207, "F32", base("olmo2", "Olmo2ForCausalLM", rope_theta=500000.0, pad_token_id=0)),
    ("olmo2-tied-bf16", 208, "BF16", base("olmo2", "Olmo2ForCausalLM", num_key_value_heads=4, head_dim=None,
                                          tie_word_embeddings=True, pad_token_id=0)),
    ("mixtral-f32", 209, "F32", base("mixtral", "MixtralForCausalLM", num_local_experts=4, num_experts_per_tok=2,
                                     intermediate_size=48, sliding_window=None, output_router_logits=False,
                                     router_aux_loss_coef=0.02, router_jitter_noise=0.0, rope_theta=1000000.0)),
    ("mixtral-top1-bf16", 210, "BF16", base("mixtral", "MixtralForCausalLM", num_local_experts=3,
                                            num_experts_per_tok=1, intermediate_size=40, sliding_window=6,
                                            tie_word_embeddings=True, router_jitter_noise=0.0)),
    ("llama-linear-f32", 211, "F32", llama(rope_scaling={"rope_type": "linear", "factor": 4.0})),
    ("llama-dynamic-f32", 212, "F32", llama(max_position_embeddings=8, rope_scaling={"type": "dynamic", "factor": 2.0})),
    ("llama-yarn-v5-f32", 213, "F32", to_v5(llama(max_position_embeddings=64, rope_theta=10000.0, torch_dtype="float32",
                                                  rope_scaling={"rope_type": "yarn", "factor": 8.0, "beta_fast": 16.0,
                                                                "beta_slow": 2.0, "attention_factor": 1.3}))),
]
for _name, _seed, _dtype, _c in CONFIGS:
    if _c.get("head_dim", 0) is None:
        del _c["head_dim"]

# transformers' Gemma3TextConfig defaults: what a multimodal config's text_config means by a field it leaves out.
GEMMA3_TEXT_DEFAULTS = {
    "model_type": "gemma3_text", "vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216,
    "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 131072, "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True, "rope_theta": 1000000.0, "attention_bias": False, "query_pre_attn_scalar": 256,
    "sliding_window": 4096, "final_logit_softcapping": None, "attn_logit_softcapping": None, "rope_scaling": None,
    "rope_local_base_freq": 10000.0, "sliding_window_pattern": 6,
}

# (name, seed, dtype, top-level config.json); text_config leaves the defaults it relies on out, as gemma-3-4b's does.
MULTIMODAL = [
    ("gemma3mm-f32", 214, "F32", {
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
        "text_config": {"model_type": "gemma3_text", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 6,
                        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 101,
                        "sliding_window": 3, "rope_scaling": {"factor": 8.0, "rope_type": "linear"}},
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 8, "intermediate_size": 16,
                          "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 8, "patch_size": 4,
                          "vision_use_head": False},
        "mm_tokens_per_image": 4, "boi_token_index": 97, "eoi_token_index": 98, "image_token_index": 99,
        "initializer_range": 0.02, "eos_token_id": [1, 106]}),
    ("gemma3mm-untied-bf16", 215, "BF16", {
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
        "text_config": {"model_type": "gemma3_text", "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16, "vocab_size": 101,
                        "query_pre_attn_scalar": 16, "sliding_window": 4, "sliding_window_pattern": 2,
                        "max_position_embeddings": 64, "tie_word_embeddings": False, "rope_theta": 500000.0},
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 8, "intermediate_size": 16,
                          "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 8, "patch_size": 4},
        "mm_tokens_per_image": 4, "boi_token_index": 97, "eoi_token_index": 98, "image_token_index": 99}),
]


def text_config_of(top):
    """The text model a multimodal Gemma 3 config describes: Gemma3TextConfig's defaults under its text_config."""
    return dict(GEMMA3_TEXT_DEFAULTS, **top["text_config"])


def vision_weights(seed):
    """A few tensors in the vision tower's and projector's names: the text model must leave them alone."""
    draw = z.Draw(seed + 1000)
    v = "vision_tower.vision_model."
    return {v + "embeddings.patch_embedding.weight": draw(8, 3, 4, 4, std=0.2), v + "embeddings.patch_embedding.bias": draw(8, std=0.1),
            v + "post_layernorm.weight": draw(8, std=0.3, mean=1.0),
            "multi_modal_projector.mm_input_projection_weight": draw(8, 32, std=0.2),
            "multi_modal_projector.mm_soft_emb_norm.weight": draw(8, std=0.3)}


# ---- build -----------------------------------------------------------------------------------------------------

def self_check(name, config, w):
    kind = config["model_type"]
    single = forward(config, w, SINGLE)
    assert single.std() > 0.5, f"{name}: logits too small ({single.std():.3f})"
    changed = [SINGLE[0][:-1] + [(SINGLE[0][-1] + 1) % config["vocab_size"]]]
    after = forward(config, w, changed)
    assert torch.allclose(single[:, :-1], after[:, :-1], atol=1e-12) and z.differ(single[:, -1], after[:, -1]), f"{name}: not causal"
    both = forward(config, w, BATCH)
    for i, row in enumerate(BATCH):
        assert torch.allclose(both[i], forward(config, w, [row])[0], atol=1e-10), f"{name}: batch row {i}"
    theta, scaling = rope_params(config)
    if scaling is not None:
        plain = copy.deepcopy(config)
        plain.pop("rope_scaling", None)
        if "rope_parameters" in plain:
            rp = plain["rope_parameters"]
            if "full_attention" in rp:
                rp["full_attention"] = {"rope_type": "default", "rope_theta": rp["full_attention"]["rope_theta"]}
            else:
                plain["rope_parameters"] = {"rope_type": "default", "rope_theta": rp["rope_theta"]}
        assert z.differ(single, forward(plain, w, SINGLE), 1e-3), f"{name}: the rope scaling should change the logits"
        kind_ = scaling.get("rope_type", scaling.get("type"))
        if kind_ == "dynamic":  # a sequence within max_position_embeddings is unscaled
            short = [SINGLE[0][:config["max_position_embeddings"]]]
            assert torch.allclose(forward(config, w, short), forward(plain, w, short), atol=1e-12), name
            assert config["max_position_embeddings"] < len(SINGLE[0])
        if kind_ == "longrope":
            assert len(BATCH[0]) <= config["original_max_position_embeddings"] < len(SINGLE[0]), name
    if "rope_scaling" in config and config.get("rope_scaling") is not None and kind != "gemma3_text":
        assert torch.allclose(single, forward(to_v5(config), w, SINGLE), atol=1e-12), f"{name}: v5 spelling differs"
    if any(is_local(config, l) for l in range(config["num_hidden_layers"])):
        assert z.differ(single, forward(config, w, SINGLE, no_windows=True), 1e-3), f"{name}: windows should matter"
    if kind == "mixtral":
        dense = dict(config, num_experts_per_tok=config["num_local_experts"])
        x = torch.randn(1, 3, config["hidden_size"], dtype=torch.float64)
        p = "model.layers.0."
        w64 = {k: t.to(torch.float64) for k, t in w.items()}
        got = moe(dense, w64, p, x)
        gate = w64[p + "block_sparse_moe.gate.weight"]
        want = torch.zeros_like(x)
        for e in range(config["num_local_experts"]):
            e_ = f"{p}block_sparse_moe.experts.{e}."
            out = z.linear(z.activation("silu", z.linear(x, w64[e_ + "w1.weight"])) * z.linear(x, w64[e_ + "w3.weight"]), w64[e_ + "w2.weight"])
            want += torch.softmax(x @ gate.T, -1)[..., e:e + 1] * out
        assert torch.allclose(got, want, atol=1e-12), f"{name}: top-all MoE != dense mixture"


def make(name, seed, dtype, config):
    config = dict(config, _stored=dtype)
    if "dtype" not in config:
        config["torch_dtype"] = z.CONFIG_DTYPE[dtype]
    w = {k: t.to(z.TORCH_DTYPE[dtype]) for k, t in weights(config, seed).items()}
    self_check(name, config, w)
    golden = {"about": f"logits from scripts/golden/make_zoo2_golden.py's own float64 {config['model_type']} forward on "
                       f"the {dtype}-rounded weights; shape [batch, pos, vocab], flattened"}
    for key, tokens in (("single", SINGLE), ("batch", BATCH)):
        logits = forward(config, w, tokens)
        golden[key] = {"tokens": tokens, "shape": list(logits.shape), "logits": z.rounded(logits.numpy())}
    tensors = {k: (dtype, z.stored_array(t, dtype)) for k, t in w.items()}
    size = z.write_folder(name, config, tensors, golden)
    back = z.read_safetensors(os.path.join(z.ZOO, name, "model.safetensors"))
    assert all(torch.equal(back[k], t.to(torch.float64)) for k, t in w.items()), f"{name}: file differs from weights"
    print(f"{name}: {size / 1024:.1f} KB, logits std {forward(config, w, SINGLE).std():.3f}")


def make_multimodal(name, seed, dtype, top):
    """A multimodal Gemma 3 folder: the text model's forward on its merged text config, its weights renamed."""
    text = dict(text_config_of(top), _stored=dtype)
    top = dict(top, torch_dtype=z.CONFIG_DTYPE[dtype], _stored=dtype)
    w = {k: t.to(z.TORCH_DTYPE[dtype]) for k, t in weights(text, seed).items()}
    self_check(name, text, w)
    golden = {"about": f"logits from scripts/golden/make_zoo2_golden.py's own float64 gemma3_text forward (text_config over "
                       f"Gemma3TextConfig's defaults) on the {dtype}-rounded weights; shape [batch, pos, vocab], flattened"}
    for key, tokens in (("single", SINGLE), ("batch", BATCH)):
        logits = forward(text, w, tokens)
        golden[key] = {"tokens": tokens, "shape": list(logits.shape), "logits": z.rounded(logits.numpy())}
    # gemma-3-4b's own files: language_model.model.* and language_model.lm_head.weight (transformers maps them on load)
    stored = {("language_model." + k): t for k, t in w.items()}
    stored.update({k: t.to(z.TORCH_DTYPE[dtype]) for k, t in vision_weights(seed).items()})
    tensors = {k: (dtype, z.stored_array(t, dtype)) for k, t in stored.items()}
    size = z.write_folder(name, top, tensors, golden)
    print(f"{name}: {size / 1024:.1f} KB, logits std {forward(text, w, SINGLE).std():.3f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    only = set(sys.argv[1:])
    for name, seed, dtype, config in CONFIGS:
        if not only or name in only:
            make(name, seed, dtype, config)
    for name, seed, dtype, config in MULTIMODAL:
        if not only or name in only:
            make_multimodal(name, seed, dtype, config)
