#!/usr/bin/python3
"""Golden fixtures for the decoder model zoo (Llama, Mistral, Qwen2, GPT-NeoX, Gemma, Gemma 2) and a BERT encoder.

Run with Debian's python3 (torch 1.13 + numpy; `transformers` and `safetensors` are not needed and not used):

    /usr/bin/python3 scripts/golden/make_zoo_golden.py

Same recipe and fixture format as make_gpt2_golden.py. For each configuration this script
  1. draws random weights from a fixed seed, in Hugging Face's tensor names and shapes (nn.Linear weights stored
     [out, in] and applied as x @ W.T + b), rounds them to the stored dtype (F32, F16 or BF16),
  2. writes a Hugging Face folder: config.json (real keys, model_type, architectures) + model.safetensors (bytes
     assembled by hand: 8-byte length, JSON header padded with spaces, raw little-endian data),
  3. runs its own forward pass, written from the equations in float64 on the rounded weights, and writes golden.json:
     {"about", "single": {"tokens", "shape", "logits"}, "batch": {...}}; logits flattened from [batch, pos, vocab].
     BERT's golden.json holds per input "tokens", "attention_mask", "hidden_shape", "hidden" (last hidden states,
     [batch, pos, d_model] flattened, every position including padding), "shape" and "mlm_logits".
Folders land in tests/SharpLens.Tests/Fixtures/zoo/<name>/, each under 200 KB.

Token ids (vocab 101 everywhere): single = 7 0 100 42 42 13 99 1 58 23 77 5 (12 positions, longer than every sliding
window); batch = [3 14 15 92 65 35 89 79] and [100 99 98 0 1 2 50 50] (8 positions, no padding). BERT's batch pads
its second sequence with id 0 for its last three positions (attention_mask 1 1 1 1 1 0 0 0); token_type_ids are 0.

Semantics implemented, per family (HF = Hugging Face transformers' modeling_<family>.py):

All rotary models
  - RoPE is "rotate half" (GPT-NeoX style, as HF stores Llama-family weights): for rotary dim r, pair component i
    with i + r/2 (i < r/2): x' = x * cos(pos * f) + rotate_half(x) * sin(pos * f), rotate_half(x) = [-x2, x1],
    f_i = theta^(-2i/r), cos/sin tables of width r are [cos(pos f), cos(pos f)] concatenated. Positions start at 0.
    Applied to q and k only, after the projections (and after the q/k biases where those exist).
  - Partial rotary (NeoX rotary_pct < 1): r = int(head_size * rotary_pct); rotation acts on the FIRST r components
    of each head; the rest pass through unchanged; f_i uses r (not head_size) in the exponent's denominator.
  - HF computes inv_freq and cos/sin in float32; this reference uses float64 throughout (differences ~1e-7).
  - Causal attention; GQA/MQA: query head h reads key/value head h // (n_heads / n_kv_heads) (HF's repeat_kv:
    each kv head repeated in place, n_rep consecutive query heads share it).
  - Attention scale 1/sqrt(head_dim) unless stated; softmax over keys; masked scores are -inf.
  - Sliding window w (Mistral, Gemma 2 local layers): query at position q sees key k iff q - w < k <= q, i.e. the
    w most recent positions including itself (HF masking_utils.sliding_window_overlay: kv_idx > q_idx - w).

Llama (llama-tied-f32, llama-untied-bf16)
  - model.embed_tokens -> per layer: x += o_proj(attn(input_layernorm(x))); x += down_proj(silu(gate_proj(h)) *
    up_proj(h)) with h = post_attention_layernorm(x) -> model.norm -> lm_head (or embed_tokens.weight when
    tie_word_embeddings, in which case the file has no lm_head.weight).
  - RMSNorm: x / sqrt(mean(x^2) + rms_norm_eps) * weight. No biases (attention_bias false, mlp_bias false).
  - bf16 fixture: weights rounded to bfloat16 (round-to-nearest-even, torch's cast), golden computed in float64
    from those rounded values.
Mistral (mistral-sliding-f32): Llama plus sliding_window = 4 on every layer (GQA 4 query / 2 kv heads).
Qwen2 (qwen2-f32): Llama plus biases on q_proj, k_proj, v_proj (o_proj and the MLP have none); tied embeddings as
  Qwen2.5-0.5B (tie_word_embeddings true, no lm_head.weight); use_sliding_window false, so no window is applied.
GPT-NeoX (neox-parallel-f32, neox-sequential-f16)
  - gpt_neox.layers.{i}.attention.query_key_value.weight is [3 * hidden, hidden]; its output, viewed as
    [n_heads, 3 * head_size], holds per head q | k | v: output row h*3*hs + j*hs + c is (q, k, v)[j] of head h,
    component c. Bias laid out the same way.
  - Parallel residual (use_parallel_residual true): x = x + attn(input_layernorm(x)) + mlp(post_attention_layernorm(x)).
    Sequential: x = x + attn(input_layernorm(x)); x = x + mlp(post_attention_layernorm(x)).
  - LayerNorm with weight and bias (layer_norm_eps), mlp = dense_4h_to_h(gelu(dense_h_to_4h(x))) with exact (erf)
    gelu, attention.dense with bias, final gpt_neox.final_layer_norm, untied embed_out.weight [vocab, hidden].
  - rotary_pct 0.25 (parallel; head_size 16 -> r = 4) and 0.5 (sequential; head_size 12 -> r = 6);
    rotary_emb_base 10000 and 20000.
  - neox-parallel-f32 also carries what old Pythia checkpoints carry besides weights: per layer
    attention.rotary_emb.inv_freq (F32 [r/2]) and attention.masked_bias (F32 scalar); a loader must skip them.
    (Pythia's bool attention.bias buffer is left out: SafeTensorsFile reads no BOOL dtype.)
Gemma (gemma-f32)
  - head_dim 16 with hidden_size 32 and 4 heads (n_heads * head_dim = 64 != hidden_size); MQA (1 kv head).
  - Embeddings multiplied by normalizer = sqrt(hidden_size) rounded to the checkpoint dtype (HF builds it as
    torch.tensor(hidden_size ** 0.5, dtype=hidden.dtype)); here float32(sqrt(32)).
  - RMSNorm scales by (1 + weight): x / sqrt(mean(x^2) + eps) * (1 + w); the stored weights are near 0.
  - MLP: down_proj(gelu_tanh(gate_proj(x)) * up_proj(x)), gelu_tanh = HF gelu_pytorch_tanh
    (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))). config has hidden_act and hidden_activation both
    "gelu_pytorch_tanh" (HF Gemma reads hidden_activation).
  - Tied embeddings (no lm_head.weight); logits = model.norm(x) @ embed_tokens.weight.T (the unscaled embedding).
Gemma 2 (gemma2-f32): Gemma, plus
  - per layer: x = x + post_attention_layernorm(attn(input_layernorm(x)));
    x = x + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x))) (all four Gemma (1 + w) RMSNorms).
  - attention scale query_pre_attn_scalar ** -0.5 (query_pre_attn_scalar = 24, head_dim 16).
  - attention logit soft-capping after scaling, before the mask: s = cap * tanh(s / cap), attn_logit_softcapping 5.0.
  - final logits soft-capped the same way with final_logit_softcapping 3.0.
  - sliding layers are the EVEN layers (0, 2, ...; HF layer_types default "sliding_attention" if (i + 1) % 2
    else "full_attention"); here 3 layers: 0 local, 1 global, 2 local; sliding_window 4. config.json has no
    layer_types key (as in google/gemma-2-2b), so a loader has to apply that default.
BERT (bert-tiny-f32, BertForMaskedLM layout)
  - embeddings: word + position (position ids 0..pos-1) + token_type (id 0), then LayerNorm (layer_norm_eps 1e-12).
  - per layer (post-norm): a = attention.output.LayerNorm(x + attention.output.dense(selfattn(x)));
    x = output.LayerNorm(a + output.dense(gelu(intermediate.dense(a)))). Exact (erf) gelu. Bidirectional
    attention; padded keys (attention_mask 0) get -inf; padded query positions are still computed.
  - MLM head: cls.predictions.transform.dense -> gelu -> transform.LayerNorm -> decoder: logits = t @ W.T + bias
    with W = cls.predictions.decoder.weight (equal to bert.embeddings.word_embeddings.weight: tied, as
    tie_word_embeddings is true) and bias = cls.predictions.bias.
  - The file also carries bert.pooler.dense.* and cls.seq_relationship.* (as bert-base-uncased does); unused here.

Self-checks (asserts, run every time): the rotate-half RoPE equals an independent complex-number RoPE; GQA equals
MHA with the kv heads repeated; a sliding window at least as long as the sequence equals full attention; causality
(changing a later token leaves earlier logits unchanged); NeoX parallel and sequential residuals differ; Gemma 2's
soft-capping is active; the sliding windows change the logits; BERT's padded batch row equals the unpadded sequence
on its real positions.
"""
import json
import math
import os
import struct

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
ZOO = os.path.join(ROOT, "tests", "SharpLens.Tests", "Fixtures", "zoo")

SINGLE = [[7, 0, 100, 42, 42, 13, 99, 1, 58, 23, 77, 5]]
BATCH = [[3, 14, 15, 92, 65, 35, 89, 79], [100, 99, 98, 0, 1, 2, 50, 50]]
BERT_SINGLE = ([[2, 17, 45, 99, 3, 64, 8, 71, 30, 1]], [[1] * 10])
BERT_BATCH = ([[2, 55, 12, 90, 3, 41, 77, 5], [2, 60, 33, 3, 9, 0, 0, 0]], [[1] * 8, [1, 1, 1, 1, 1, 0, 0, 0]])

TORCH_DTYPE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
CONFIG_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


class Draw:
    """Random tensors from one seeded generator."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def __call__(self, *shape, std=0.15, mean=0.0):
        return torch.randn(*shape, generator=self.g, dtype=torch.float32) * std + mean


# ---- shared maths, float64 ----------------------------------------------------------------------------------

def rms_norm(x, weight, eps, offset=0.0):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * (offset + weight)


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def activation(name, x):
    if name == "silu":
        return x / (1.0 + torch.exp(-x))
    if name == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name in ("gelu_pytorch_tanh", "gelu_new"):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    raise ValueError(name)


def linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def llama3_frequencies(freq, scaling):
    """Llama 3.1's rope_scaling {"rope_type": "llama3"}: wavelengths longer than original_max_position_embeddings /
    low_freq_factor are stretched by factor, shorter than .../high_freq_factor kept, and those between blended
    linearly in (original context / wavelength)."""
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    context = scaling["original_max_position_embeddings"]
    out = []
    for f in freq.tolist():
        wavelength = 2 * math.pi / f
        if wavelength < context / high:
            out.append(f)
        elif wavelength > context / low:
            out.append(f / factor)
        else:
            smooth = (context / wavelength - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return torch.tensor(out, dtype=torch.float64)


def rope(x, rotary_dim, theta, scaling=None):
    """Rotate-half RoPE on the first rotary_dim components of each head. x: [batch, head, pos, d_head]."""
    pos = x.shape[-2]
    half = rotary_dim // 2
    freq = theta ** (-torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim)  # [half]
    if scaling is not None:
        freq = llama3_frequencies(freq, scaling)
    angle = torch.arange(pos, dtype=torch.float64)[:, None] * freq[None, :]  # [pos, half]
    cos = torch.cat([angle.cos(), angle.cos()], -1)  # [pos, rotary_dim]
    sin = torch.cat([angle.sin(), angle.sin()], -1)
    rot, keep = x[..., :rotary_dim], x[..., rotary_dim:]
    rotated = torch.cat([-rot[..., half:], rot[..., :half]], -1)
    return torch.cat([rot * cos + rotated * sin, keep], -1)


def rope_complex(x, rotary_dim, theta):
    """The same rotation written as complex multiplication of (x_i, x_{i+r/2}) pairs: the self-check's reference."""
    pos = x.shape[-2]
    half = rotary_dim // 2
    out = x.clone()
    for p in range(pos):
        for i in range(half):
            z = complex(1.0, 0.0) * np.exp(1j * p * theta ** (-2.0 * i / rotary_dim))
            a, b = x[..., p, i].clone(), x[..., p, i + half].clone()
            out[..., p, i] = a * z.real - b * z.imag
            out[..., p, i + half] = a * z.imag + b * z.real
    return out


def attention(q, k, v, scale, allowed, softcap=None):
    """q: [batch, head, pos, d_head]; k, v: [batch, kv_head, pos, d_head]; allowed: bool [batch or 1, 1, pos, pos]."""
    rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(rep, dim=1)  # [batch, head, pos, d_head]: query head h reads kv head h // rep
    v = v.repeat_interleave(rep, dim=1)
    scores = (q @ k.transpose(-1, -2)) * scale  # [batch, head, pos, pos]
    if softcap is not None:
        scores = softcap * torch.tanh(scores / softcap)
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v  # [batch, head, pos, d_head]


def causal(pos, window=None):
    q = torch.arange(pos)[:, None]
    k = torch.arange(pos)[None, :]
    allowed = k <= q
    if window is not None:
        allowed = allowed & (k > q - window)
    return allowed[None, None]  # [1, 1, pos, pos]


def split_heads(x, heads):
    batch, pos, width = x.shape
    return x.reshape(batch, pos, heads, width // heads).transpose(1, 2)  # [batch, head, pos, d_head]


def merge_heads(z):
    batch, heads, pos, dh = z.shape
    return z.transpose(1, 2).reshape(batch, pos, heads * dh)  # [batch, pos, head * d_head]


# ---- Llama / Mistral / Qwen2 / Gemma / Gemma 2: one forward read from the HF config -------------------------

def llama_like_forward(config, w, tokens, override_window=None):
    """Forward pass of every model_type in {llama, mistral, qwen2, gemma, gemma2}, driven by its config.json."""
    kind = config["model_type"]
    gemma = kind in ("gemma", "gemma2")
    d, heads = config["hidden_size"], config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    dh = config.get("head_dim") or d // heads
    eps, theta = config["rms_norm_eps"], config.get("rope_theta", 10000.0)
    act = config["hidden_activation"] if gemma else config["hidden_act"]
    offset = 1.0 if gemma else 0.0
    qkv_bias = kind == "qwen2" or config.get("attention_bias", False)
    o_bias = kind != "qwen2" and config.get("attention_bias", False)
    scale = config["query_pre_attn_scalar"] ** -0.5 if kind == "gemma2" else dh ** -0.5
    softcap = config.get("attn_logit_softcapping") if kind == "gemma2" else None

    def window_of(layer):
        if kind == "mistral":
            return config.get("sliding_window")
        if kind == "qwen2":
            return config["sliding_window"] if config.get("use_sliding_window") else None
        if kind == "gemma2":
            return config["sliding_window"] if layer % 2 == 0 else None
        return None

    w = {k: t.to(torch.float64) for k, t in w.items()}
    tokens = torch.tensor(tokens, dtype=torch.long)
    pos = tokens.shape[1]
    x = w["model.embed_tokens.weight"][tokens]  # [batch, pos, d]
    if gemma:
        dtype = TORCH_DTYPE[config["_stored"]]
        x = x * torch.tensor(d ** 0.5, dtype=dtype).to(torch.float64)
    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        window = window_of(l) if override_window is None else override_window(l)
        a = rms_norm(x, w[p + "input_layernorm.weight"], eps, offset)
        bias = (lambda n: w[p + f"self_attn.{n}_proj.bias"]) if qkv_bias else (lambda n: None)
        q = split_heads(linear(a, w[p + "self_attn.q_proj.weight"], bias("q")), heads)  # [batch, head, pos, dh]
        k = split_heads(linear(a, w[p + "self_attn.k_proj.weight"], bias("k")), kv_heads)  # [batch, kv, pos, dh]
        v = split_heads(linear(a, w[p + "self_attn.v_proj.weight"], bias("v")), kv_heads)
        q, k = rope(q, dh, theta, config.get("rope_scaling")), rope(k, dh, theta, config.get("rope_scaling"))
        z = merge_heads(attention(q, k, v, scale, causal(pos, window), softcap))  # [batch, pos, head * dh]
        attn_out = linear(z, w[p + "self_attn.o_proj.weight"], w[p + "self_attn.o_proj.bias"] if o_bias else None)
        if kind == "gemma2":
            x = x + rms_norm(attn_out, w[p + "post_attention_layernorm.weight"], eps, offset)
            m = rms_norm(x, w[p + "pre_feedforward_layernorm.weight"], eps, offset)
        else:
            x = x + attn_out
            m = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps, offset)
        hidden = activation(act, linear(m, w[p + "mlp.gate_proj.weight"])) * linear(m, w[p + "mlp.up_proj.weight"])
        mlp_out = linear(hidden, w[p + "mlp.down_proj.weight"])
        if kind == "gemma2":
            mlp_out = rms_norm(mlp_out, w[p + "post_feedforward_layernorm.weight"], eps, offset)
        x = x + mlp_out
    x = rms_norm(x, w["model.norm.weight"], eps, offset)
    unembed = w["model.embed_tokens.weight"] if config["tie_word_embeddings"] else w["lm_head.weight"]
    logits = x @ unembed.T  # [batch, pos, vocab]
    cap = config.get("final_logit_softcapping") if kind == "gemma2" else None
    return logits if cap is None else cap * torch.tanh(logits / cap)


def llama_like_weights(config, seed):
    kind = config["model_type"]
    gemma = kind in ("gemma", "gemma2")
    draw = Draw(seed)
    d, heads, v = config["hidden_size"], config["num_attention_heads"], config["vocab_size"]
    kv_heads = config.get("num_key_value_heads") or heads
    dh = config.get("head_dim") or d // heads
    mlp = config["intermediate_size"]
    qkv_bias = kind == "qwen2" or config.get("attention_bias", False)

    def norm_weight():  # Gemma stores w in (1 + w): draw around 0; others around 1; both visibly away from identity
        return draw(d, std=0.3, mean=0.0 if gemma else 1.0)

    w = {"model.embed_tokens.weight": draw(v, d, std=0.5 if not gemma else 0.3)}
    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = norm_weight()
        w[p + "self_attn.q_proj.weight"] = draw(heads * dh, d, std=0.25)
        w[p + "self_attn.k_proj.weight"] = draw(kv_heads * dh, d, std=0.25)
        w[p + "self_attn.v_proj.weight"] = draw(kv_heads * dh, d, std=0.25)
        if qkv_bias:
            w[p + "self_attn.q_proj.bias"] = draw(heads * dh, std=0.3)
            w[p + "self_attn.k_proj.bias"] = draw(kv_heads * dh, std=0.3)
            w[p + "self_attn.v_proj.bias"] = draw(kv_heads * dh, std=0.3)
        w[p + "self_attn.o_proj.weight"] = draw(d, heads * dh, std=0.2)
        w[p + "post_attention_layernorm.weight"] = norm_weight()
        if kind == "gemma2":
            w[p + "pre_feedforward_layernorm.weight"] = norm_weight()
            w[p + "post_feedforward_layernorm.weight"] = norm_weight()
        w[p + "mlp.gate_proj.weight"] = draw(mlp, d, std=0.25)
        w[p + "mlp.up_proj.weight"] = draw(mlp, d, std=0.25)
        w[p + "mlp.down_proj.weight"] = draw(d, mlp, std=0.2)
    w["model.norm.weight"] = norm_weight()
    if not config["tie_word_embeddings"]:
        w["lm_head.weight"] = draw(v, d, std=0.3)
    return w


# ---- GPT-NeoX ------------------------------------------------------------------------------------------------

def neox_forward(config, w, tokens, parallel=None):
    d, heads, eps = config["hidden_size"], config["num_attention_heads"], config["layer_norm_eps"]
    hs = d // heads
    r = int(hs * config["rotary_pct"])
    theta = config["rotary_emb_base"]
    parallel = config["use_parallel_residual"] if parallel is None else parallel
    w = {k: t.to(torch.float64) for k, t in w.items()}
    tokens = torch.tensor(tokens, dtype=torch.long)
    batch, pos = tokens.shape
    x = w["gpt_neox.embed_in.weight"][tokens]  # [batch, pos, d]
    for l in range(config["num_hidden_layers"]):
        p = f"gpt_neox.layers.{l}."
        a = layer_norm(x, w[p + "input_layernorm.weight"], w[p + "input_layernorm.bias"], eps)
        qkv = linear(a, w[p + "attention.query_key_value.weight"], w[p + "attention.query_key_value.bias"])
        qkv = qkv.reshape(batch, pos, heads, 3, hs).permute(3, 0, 2, 1, 4)  # [3, batch, head, pos, hs]
        q, k, v = rope(qkv[0], r, theta), rope(qkv[1], r, theta), qkv[2]
        z = merge_heads(attention(q, k, v, hs ** -0.5, causal(pos)))  # [batch, pos, d]
        attn_out = linear(z, w[p + "attention.dense.weight"], w[p + "attention.dense.bias"])

        def mlp(h):
            hidden = activation(config["hidden_act"], linear(h, w[p + "mlp.dense_h_to_4h.weight"], w[p + "mlp.dense_h_to_4h.bias"]))
            return linear(hidden, w[p + "mlp.dense_4h_to_h.weight"], w[p + "mlp.dense_4h_to_h.bias"])

        ln2 = lambda h: layer_norm(h, w[p + "post_attention_layernorm.weight"], w[p + "post_attention_layernorm.bias"], eps)
        if parallel:
            x = x + attn_out + mlp(ln2(x))
        else:
            x = x + attn_out
            x = x + mlp(ln2(x))
    x = layer_norm(x, w["gpt_neox.final_layer_norm.weight"], w["gpt_neox.final_layer_norm.bias"], eps)
    return x @ w["embed_out.weight"].T  # [batch, pos, vocab]


def neox_weights(config, seed):
    draw = Draw(seed)
    d, v, mlp = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
    w = {"gpt_neox.embed_in.weight": draw(v, d, std=0.4)}
    for l in range(config["num_hidden_layers"]):
        p = f"gpt_neox.layers.{l}."
        w[p + "input_layernorm.weight"] = draw(d, std=0.2, mean=1.0)
        w[p + "input_layernorm.bias"] = draw(d, std=0.1)
        w[p + "post_attention_layernorm.weight"] = draw(d, std=0.2, mean=1.0)
        w[p + "post_attention_layernorm.bias"] = draw(d, std=0.1)
        w[p + "attention.query_key_value.weight"] = draw(3 * d, d, std=0.25)
        w[p + "attention.query_key_value.bias"] = draw(3 * d, std=0.2)
        w[p + "attention.dense.weight"] = draw(d, d, std=0.2)
        w[p + "attention.dense.bias"] = draw(d, std=0.1)
        w[p + "mlp.dense_h_to_4h.weight"] = draw(mlp, d, std=0.25)
        w[p + "mlp.dense_h_to_4h.bias"] = draw(mlp, std=0.1)
        w[p + "mlp.dense_4h_to_h.weight"] = draw(d, mlp, std=0.2)
        w[p + "mlp.dense_4h_to_h.bias"] = draw(d, std=0.1)
    w["gpt_neox.final_layer_norm.weight"] = draw(d, std=0.2, mean=1.0)
    w["gpt_neox.final_layer_norm.bias"] = draw(d, std=0.1)
    w["embed_out.weight"] = draw(v, d, std=0.3)
    return w


# ---- BERT ------------------------------------------------------------------------------------------------------

def bert_forward(config, w, tokens, mask):
    """Returns (last hidden states [batch, pos, d], MLM logits [batch, pos, vocab])."""
    d, heads, eps = config["hidden_size"], config["num_attention_heads"], config["layer_norm_eps"]
    act = config["hidden_act"]
    w = {k: t.to(torch.float64) for k, t in w.items()}
    tokens = torch.tensor(tokens, dtype=torch.long)
    keys = torch.tensor(mask, dtype=torch.bool)[:, None, None, :]  # [batch, 1, 1, pos]: padded keys are hidden
    pos = tokens.shape[1]
    e = "bert.embeddings."
    x = w[e + "word_embeddings.weight"][tokens] + w[e + "position_embeddings.weight"][torch.arange(pos)] \
        + w[e + "token_type_embeddings.weight"][torch.zeros_like(tokens)]  # [batch, pos, d]
    x = layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], eps)
    for l in range(config["num_hidden_layers"]):
        p = f"bert.encoder.layer.{l}."
        s = p + "attention.self."
        q, k, v = (split_heads(linear(x, w[s + n + ".weight"], w[s + n + ".bias"]), heads) for n in ("query", "key", "value"))
        z = merge_heads(attention(q, k, v, (d // heads) ** -0.5, keys))  # [batch, pos, d]
        o = p + "attention.output."
        a = layer_norm(x + linear(z, w[o + "dense.weight"], w[o + "dense.bias"]), w[o + "LayerNorm.weight"], w[o + "LayerNorm.bias"], eps)
        hidden = activation(act, linear(a, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))  # [batch, pos, mlp]
        o = p + "output."
        x = layer_norm(a + linear(hidden, w[o + "dense.weight"], w[o + "dense.bias"]), w[o + "LayerNorm.weight"], w[o + "LayerNorm.bias"], eps)
    t = "cls.predictions.transform."
    h = activation(act, linear(x, w[t + "dense.weight"], w[t + "dense.bias"]))
    h = layer_norm(h, w[t + "LayerNorm.weight"], w[t + "LayerNorm.bias"], eps)
    logits = linear(h, w["cls.predictions.decoder.weight"], w["cls.predictions.bias"])  # [batch, pos, vocab]
    return x, logits


def bert_weights(config, seed):
    draw = Draw(seed)
    d, v, mlp = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
    e = "bert.embeddings."
    w = {e + "word_embeddings.weight": draw(v, d, std=0.4),
         e + "position_embeddings.weight": draw(config["max_position_embeddings"], d, std=0.2),
         e + "token_type_embeddings.weight": draw(config["type_vocab_size"], d, std=0.2),
         e + "LayerNorm.weight": draw(d, std=0.2, mean=1.0), e + "LayerNorm.bias": draw(d, std=0.1)}
    for l in range(config["num_hidden_layers"]):
        p = f"bert.encoder.layer.{l}."
        for n in ("query", "key", "value"):
            w[p + f"attention.self.{n}.weight"] = draw(d, d, std=0.25)
            w[p + f"attention.self.{n}.bias"] = draw(d, std=0.2)
        w[p + "attention.output.dense.weight"] = draw(d, d, std=0.2)
        w[p + "attention.output.dense.bias"] = draw(d, std=0.1)
        w[p + "attention.output.LayerNorm.weight"] = draw(d, std=0.2, mean=1.0)
        w[p + "attention.output.LayerNorm.bias"] = draw(d, std=0.1)
        w[p + "intermediate.dense.weight"] = draw(mlp, d, std=0.25)
        w[p + "intermediate.dense.bias"] = draw(mlp, std=0.1)
        w[p + "output.dense.weight"] = draw(d, mlp, std=0.2)
        w[p + "output.dense.bias"] = draw(d, std=0.1)
        w[p + "output.LayerNorm.weight"] = draw(d, std=0.2, mean=1.0)
        w[p + "output.LayerNorm.bias"] = draw(d, std=0.1)
    w["bert.pooler.dense.weight"] = draw(d, d, std=0.2)
    w["bert.pooler.dense.bias"] = draw(d, std=0.1)
    t = "cls.predictions."
    w[t + "transform.dense.weight"] = draw(d, d, std=0.25)
    w[t + "transform.dense.bias"] = draw(d, std=0.1)
    w[t + "transform.LayerNorm.weight"] = draw(d, std=0.2, mean=1.0)
    w[t + "transform.LayerNorm.bias"] = draw(d, std=0.1)
    w[t + "bias"] = draw(v, std=0.3)
    w[t + "decoder.weight"] = w[e + "word_embeddings.weight"].clone()  # tied to the word embeddings
    w["cls.seq_relationship.weight"] = draw(2, d, std=0.2)
    w["cls.seq_relationship.bias"] = draw(2, std=0.1)
    return w


# ---- the configurations ----------------------------------------------------------------------------------------

def llama_config(**over):
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
         "hidden_act": "silu", "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
         "rope_scaling": None, "attention_bias": False, "mlp_bias": False, "attention_dropout": 0.0,
         "tie_word_embeddings": True, "vocab_size": 101, "bos_token_id": 1, "eos_token_id": 2,
         "initializer_range": 0.02, "pretraining_tp": 1, "use_cache": True}
    c.update(over)
    return c


ZOO_CONFIGS = [
    ("llama-tied-f32", 101, "F32", llama_config()),
    ("llama-untied-bf16", 102, "BF16", llama_config(
        hidden_size=48, intermediate_size=96, num_attention_heads=4, num_key_value_heads=4, head_dim=12,
        rope_theta=500000.0, rms_norm_eps=1e-6, tie_word_embeddings=False)),
    # Llama 3.1/3.2 rotary scaling; original context 512 puts the head's four wavelengths (6, 167, 4443, 118143) in all three bands.
    ("llama3-scaled-f32", 109, "F32", llama_config(
        rope_theta=500000.0, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                           "high_freq_factor": 4.0, "original_max_position_embeddings": 512})),
    ("mistral-sliding-f32", 103, "F32", {k: v for k, v in llama_config(
        architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=4, rope_theta=10000.0,
        max_position_embeddings=64, tie_word_embeddings=False).items()
        if k not in ("mlp_bias", "pretraining_tp", "rope_scaling", "attention_bias")}),
    ("qwen2-f32", 104, "F32", {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 32, "intermediate_size": 80,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_act": "silu",
        "max_position_embeddings": 64, "max_window_layers": 2, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "rope_scaling": None, "sliding_window": 4, "use_sliding_window": False, "tie_word_embeddings": True,
        "vocab_size": 101, "attention_dropout": 0.0, "bos_token_id": 100, "eos_token_id": 100,
        "initializer_range": 0.02, "use_cache": True}),
    ("neox-parallel-f32", 105, "F32", {
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": 32,
        "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "hidden_act": "gelu",
        "rotary_pct": 0.25, "rotary_emb_base": 10000, "max_position_embeddings": 64, "layer_norm_eps": 1e-5,
        "use_parallel_residual": True, "tie_word_embeddings": False, "vocab_size": 101, "attention_bias": True,
        "attention_dropout": 0.0, "hidden_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 0,
        "initializer_range": 0.02, "use_cache": True}),
    ("neox-sequential-f16", 106, "F16", {
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": 36,
        "intermediate_size": 72, "num_hidden_layers": 3, "num_attention_heads": 3, "hidden_act": "gelu",
        "rotary_pct": 0.5, "rotary_emb_base": 20000, "max_position_embeddings": 64, "layer_norm_eps": 1e-5,
        "use_parallel_residual": False, "tie_word_embeddings": False, "vocab_size": 101, "attention_bias": True,
        "attention_dropout": 0.0, "hidden_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 0,
        "initializer_range": 0.02, "use_cache": True}),
    ("gemma-f32", 107, "F32", {
        "architectures": ["GemmaForCausalLM"], "model_type": "gemma", "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16,
        "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "attention_bias": False, "attention_dropout": 0.0,
        "tie_word_embeddings": True, "vocab_size": 101, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 1,
        "initializer_range": 0.02, "use_cache": True}),
    ("gemma2-f32", 108, "F32", {
        "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "attention_bias": False, "attention_dropout": 0.0,
        "query_pre_attn_scalar": 24, "sliding_window": 4, "attn_logit_softcapping": 5.0,
        "final_logit_softcapping": 3.0, "cache_implementation": "hybrid", "tie_word_embeddings": True,
        "vocab_size": 101, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 1, "initializer_range": 0.02,
        "use_cache": True}),
]

BERT_CONFIG = ("bert-tiny-f32", 109, "F32", {
    "architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 32, "intermediate_size": 64,
    "num_hidden_layers": 2, "num_attention_heads": 4, "hidden_act": "gelu", "max_position_embeddings": 16,
    "type_vocab_size": 2, "layer_norm_eps": 1e-12, "vocab_size": 101, "pad_token_id": 0,
    "position_embedding_type": "absolute", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02, "tie_word_embeddings": True, "use_cache": True})


# ---- the files -------------------------------------------------------------------------------------------------

def write_safetensors(path, tensors):
    """tensors: name -> (dtype string, numpy array of that dtype's bytes). Layout as in SafeTensorsFile.cs."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (dtype, array) in tensors.items():
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def read_safetensors(path):
    """The file read back (name -> float64 tensor), to check what was written."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data, out = raw[8 + n:], {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        kind = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}[info["dtype"]]
        a = np.frombuffer(data[begin:end], dtype=np.dtype(kind).newbyteorder("<")).reshape(info["shape"])
        if info["dtype"] == "BF16":  # bfloat16 is the top half of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(a.astype(np.float64))
    return out


def stored_array(t, dtype):
    """A tensor already rounded to dtype, as the numpy array whose bytes the file holds."""
    if dtype == "BF16":
        return t.contiguous().view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


def rounded(array):
    return [float("%.9g" % x) for x in array.reshape(-1)]


def write_folder(name, config, tensors, golden):
    folder = os.path.join(ZOO, name)
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({k: v for k, v in config.items() if not k.startswith("_")}, f, indent=2)
    with open(os.path.join(folder, "golden.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))
    return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))


def make_decoder(name, seed, dtype, config):
    config = dict(config, torch_dtype=CONFIG_DTYPE[dtype], _stored=dtype)
    neox = config["model_type"] == "gpt_neox"
    w = (neox_weights if neox else llama_like_weights)(config, seed)
    w = {k: t.to(TORCH_DTYPE[dtype]) for k, t in w.items()}  # the reference runs on exactly the stored numbers
    forward = neox_forward if neox else llama_like_forward
    tensors = {k: (dtype, stored_array(t, dtype)) for k, t in w.items()}
    if name == "neox-parallel-f32":  # old Pythia checkpoints carry these buffers; loaders must skip them
        hs = config["hidden_size"] // config["num_attention_heads"]
        r = int(hs * config["rotary_pct"])
        inv_freq = 1.0 / (config["rotary_emb_base"] ** (np.arange(0, r, 2, dtype=np.float32) / r))
        for l in range(config["num_hidden_layers"]):
            tensors[f"gpt_neox.layers.{l}.attention.rotary_emb.inv_freq"] = ("F32", inv_freq.astype(np.float32))
            tensors[f"gpt_neox.layers.{l}.attention.masked_bias"] = ("F32", np.array(-1e9, np.float32))
    golden = {"about": f"logits from scripts/golden/make_zoo_golden.py's own float64 {config['model_type']} forward "
                       f"on the {dtype}-rounded weights; shape [batch, pos, vocab], flattened"}
    for key, tokens in (("single", SINGLE), ("batch", BATCH)):
        logits = forward(config, w, tokens)
        golden[key] = {"tokens": tokens, "shape": list(logits.shape), "logits": rounded(logits.numpy())}
    self_check(name, config, w, forward)
    size = write_folder(name, config, tensors, golden)
    back = read_safetensors(os.path.join(ZOO, name, "model.safetensors"))
    assert all(torch.equal(back[k], t.to(torch.float64)) for k, t in w.items()), f"{name}: file differs from weights"
    print(f"{name}: {size / 1024:.1f} KB, logits std {forward(config, w, SINGLE).std():.3f}")


def make_bert(name, seed, dtype, config):
    w = {k: t.to(TORCH_DTYPE[dtype]) for k, t in bert_weights(config, seed).items()}
    tensors = {k: (dtype, stored_array(t, dtype)) for k, t in w.items()}
    golden = {"about": "last hidden states and MLM logits from scripts/golden/make_zoo_golden.py's own float64 "
                       "BertForMaskedLM forward; hidden [batch, pos, d_model] and mlm_logits [batch, pos, vocab], "
                       "flattened; token_type_ids all 0; padded positions included"}
    for key, (tokens, mask) in (("single", BERT_SINGLE), ("batch", BERT_BATCH)):
        hidden, logits = bert_forward(config, w, tokens, mask)
        golden[key] = {"tokens": tokens, "attention_mask": mask, "hidden_shape": list(hidden.shape),
                       "hidden": rounded(hidden.numpy()), "shape": list(logits.shape),
                       "mlm_logits": rounded(logits.numpy())}
    # The padded row must equal its sequence run alone, on the real positions.
    tokens, mask = BERT_BATCH
    real = sum(mask[1])
    padded_h, padded_l = bert_forward(config, w, tokens, mask)
    alone_h, alone_l = bert_forward(config, w, [tokens[1][:real]], [[1] * real])
    assert torch.allclose(padded_h[1, :real], alone_h[0], atol=1e-10), "BERT: padding leaks into real positions"
    assert torch.allclose(padded_l[1, :real], alone_l[0], atol=1e-10)
    assert not torch.allclose(bert_forward(config, w, tokens, [[1] * 8, [1] * 8])[0][1, :real], alone_h[0], atol=1e-3), \
        "BERT: unmasking the padding should change the real positions"
    size = write_folder(name, config, tensors, golden)
    back = read_safetensors(os.path.join(ZOO, name, "model.safetensors"))
    assert all(torch.equal(back[k], t.to(torch.float64)) for k, t in w.items()), f"{name}: file differs from weights"
    print(f"{name}: {size / 1024:.1f} KB, mlm logits std {padded_l.std():.3f}, hidden std {padded_h.std():.3f}")


# ---- self-checks -----------------------------------------------------------------------------------------------

def differ(a, b, at_least=1e-3):
    return (a - b).abs().max().item() > at_least


def self_check(name, config, w, forward):
    kind = config["model_type"]
    base = forward(config, w, SINGLE)
    assert base.std() > 0.5, f"{name}: logits too small to catch mistakes"
    # Causality: changing the last token leaves every earlier position's logits unchanged.
    changed = [SINGLE[0][:-1] + [(SINGLE[0][-1] + 1) % config["vocab_size"]]]
    after = forward(config, w, changed)
    assert torch.allclose(base[:, :-1], after[:, :-1], atol=1e-12) and differ(base[:, -1], after[:, -1]), name
    # The batch rows equal the sequences run one at a time.
    both = forward(config, w, BATCH)
    for i, row in enumerate(BATCH):
        assert torch.allclose(both[i], forward(config, w, [row])[0], atol=1e-10), name
    if kind == "gpt_neox":
        other = neox_forward(config, w, SINGLE, parallel=not config["use_parallel_residual"])
        assert differ(base, other, 0.05), f"{name}: parallel and sequential residuals should differ"
        return
    heads, kv = config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"]
    if kv < heads:  # GQA equals MHA whose k/v projections repeat each kv head for its group of query heads
        dh = config.get("head_dim") or config["hidden_size"] // heads
        mha = dict(config, num_key_value_heads=heads)
        wide = dict(w)
        for l in range(config["num_hidden_layers"]):
            for n in ("k", "v"):
                for part in ("weight", "bias"):
                    key = f"model.layers.{l}.self_attn.{n}_proj.{part}"
                    if key in w:
                        t = w[key].reshape(kv, dh, -1) if part == "weight" else w[key].reshape(kv, dh)
                        wide[key] = t.repeat_interleave(heads // kv, dim=0).reshape(heads * dh, *t.shape[2:])
        assert torch.allclose(base, forward(mha, wide, SINGLE), atol=1e-10), f"{name}: GQA != repeated MHA"
    # A window at least as long as the sequence equals full attention; the real windows (where present) matter.
    full = llama_like_forward(config, w, SINGLE, override_window=lambda l: None)
    wide_window = llama_like_forward(config, w, SINGLE, override_window=lambda l: len(SINGLE[0]))
    assert torch.allclose(full, wide_window, atol=1e-12), name
    if kind in ("mistral", "gemma2"):
        assert differ(base, full, 0.01), f"{name}: the sliding window should change the logits"
        # The first `window` positions see nothing outside the window, so they agree with full attention.
        win = config["sliding_window"]
        assert torch.allclose(base[:, :win], full[:, :win], atol=1e-12), name
    else:
        assert torch.allclose(base, full, atol=1e-12), name
    if kind == "gemma2":
        uncapped = dict(config, attn_logit_softcapping=None, final_logit_softcapping=None)
        raw = llama_like_forward(uncapped, w, SINGLE)
        assert base.abs().max() < config["final_logit_softcapping"] and raw.abs().max() > config["final_logit_softcapping"], \
            f"{name}: final soft-capping should be active (raw max {raw.abs().max():.2f})"
        attn_only = llama_like_forward(dict(config, final_logit_softcapping=None), w, SINGLE)
        assert differ(attn_only, raw, 0.01), f"{name}: attention soft-capping should be active"


def check_maths():
    """The hand-written pieces against torch's own and an independent RoPE."""
    import torch.nn.functional as F
    x = torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    assert torch.allclose(activation("silu", x), F.silu(x), atol=1e-14)
    assert torch.allclose(activation("gelu", x), F.gelu(x), atol=1e-14)
    assert torch.allclose(activation("gelu_pytorch_tanh", x), F.gelu(x, approximate="tanh"), atol=1e-14)
    wt, b = x[0, 0], x[0, 1]
    assert torch.allclose(layer_norm(x, wt, b, 1e-5), F.layer_norm(x, (16,), wt, b, 1e-5), atol=1e-12)
    x = torch.randn(2, 3, 7, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for r, theta in ((12, 10000.0), (4, 10000.0), (6, 500000.0)):
        assert torch.allclose(rope(x, r, theta), rope_complex(x, r, theta), atol=1e-12), (r, theta)
    assert torch.allclose(rope(x, 4, 10000.0)[..., 4:], x[..., 4:]), "partial rotary must leave the tail alone"


if __name__ == "__main__":
    torch.set_num_threads(1)
    check_maths()
    for name, seed, dtype, config in ZOO_CONFIGS:
        make_decoder(name, seed, dtype, config)
    make_bert(*BERT_CONFIG)
