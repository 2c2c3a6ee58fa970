#!/usr/bin/python3
"""Golden GPT-2 fixtures for SharpLens's loading tests, from an independent forward pass.

Run with Debian's python3 (torch 1.13 + numpy; `transformers` is not needed and not used):

    /usr/bin/python3 scripts/golden/make_gpt2_golden.py

For each configuration below this script
  1. draws random GPT-2 weights from a fixed seed, in Hugging Face's names and layouts
     (Conv1D weights stored [in, out] and applied as x @ W + b; c_attn holds q | k | v side by side),
  2. writes them as a Hugging Face folder: config.json + model.safetensors, the safetensors bytes assembled
     here with struct/json (8-byte length, JSON header padded with spaces, raw little-endian data),
  3. runs its own GPT-2 forward pass (below, written from the equations, in float64) on a fixed sequence and a
     batch of two, and writes the logits to golden.json.

The C# tests load these folders with SharpLens and compare its float32 logits with these within 1e-4.
The folders land in tests/SharpLens.Tests/Fixtures/gpt2-tiny-*/ and stay under 200 KB each.
"""
import json
import math
import os
import struct

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "tests", "SharpLens.Tests", "Fixtures")

CONFIGS = [
    dict(  # GPT2Model-style file: bare names, tied embeddings, old causal-mask buffers included, float32
        folder="gpt2-tiny-tied", seed=1234, n_embd=32, n_layer=2, n_head=4, n_inner=None, vocab_size=101,
        n_positions=32, activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=True,
        prefix="", dtype="F32", mask_buffers=True),
    dict(  # GPT2LMHeadModel-style file: names under transformer., untied lm_head, exact gelu, float16
        folder="gpt2-tiny-untied-f16", seed=5678, n_embd=48, n_layer=3, n_head=3, n_inner=96, vocab_size=101,
        n_positions=24, activation_function="gelu", layer_norm_epsilon=1e-6, tie_word_embeddings=False,
        prefix="transformer.", dtype="F16", mask_buffers=False),
]

SINGLE = [[7, 0, 100, 42, 42, 13, 99, 1, 58, 23, 77, 5]]
BATCH = [[3, 14, 15, 92, 65, 35, 89, 79], [100, 99, 98, 0, 1, 2, 50, 50]]


def random_weights(cfg):
    """HF-named GPT-2 weights, std 0.15 for matrices, visible biases and LayerNorm weights away from 1."""
    g = torch.Generator().manual_seed(cfg["seed"])
    d, v, n = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    mlp = cfg["n_inner"] or 4 * d

    def normal(*shape, std=0.15, mean=0.0):
        return torch.randn(*shape, generator=g) * std + mean

    w = {"wte.weight": normal(v, d), "wpe.weight": normal(n, d, std=0.1)}
    for l in range(cfg["n_layer"]):
        p = f"h.{l}."
        w[p + "ln_1.weight"] = normal(d, std=0.1, mean=1.0)
        w[p + "ln_1.bias"] = normal(d, std=0.1)
        w[p + "attn.c_attn.weight"] = normal(d, 3 * d, std=0.2)
        w[p + "attn.c_attn.bias"] = normal(3 * d, std=0.1)
        w[p + "attn.c_proj.weight"] = normal(d, d)
        w[p + "attn.c_proj.bias"] = normal(d, std=0.1)
        w[p + "ln_2.weight"] = normal(d, std=0.1, mean=1.0)
        w[p + "ln_2.bias"] = normal(d, std=0.1)
        w[p + "mlp.c_fc.weight"] = normal(d, mlp, std=0.2)
        w[p + "mlp.c_fc.bias"] = normal(mlp, std=0.1)
        w[p + "mlp.c_proj.weight"] = normal(mlp, d)
        w[p + "mlp.c_proj.bias"] = normal(d, std=0.1)
    w["ln_f.weight"] = normal(d, std=0.1, mean=1.0)
    w["ln_f.bias"] = normal(d, std=0.1)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = normal(v, d)
    # What the file will hold, so the reference runs on exactly those numbers.
    torch_dtype = {"F32": torch.float32, "F16": torch.float16}[cfg["dtype"]]
    return {k: t.to(torch_dtype) for k, t in w.items()}


# ---- the reference forward pass, from the equations, in float64 ------------------------------------------

def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def activation(name, x):
    if name == "gelu_new":
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name == "relu":
        return torch.clamp(x, min=0.0)
    raise ValueError(name)


def forward(cfg, w, tokens):
    w = {k: t.to(torch.float64) for k, t in w.items()}
    eps, d, heads = cfg["layer_norm_epsilon"], cfg["n_embd"], cfg["n_head"]
    dh = d // heads
    tokens = torch.tensor(tokens, dtype=torch.long)
    batch, pos = tokens.shape
    x = w["wte.weight"][tokens] + w["wpe.weight"][torch.arange(pos)]  # [batch, pos, d]
    future = torch.triu(torch.ones(pos, pos, dtype=torch.bool), diagonal=1)
    for l in range(cfg["n_layer"]):
        p = f"h.{l}."
        a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # [batch, pos, 3d]
        q, k, v = (t.reshape(batch, pos, heads, dh).transpose(1, 2) for t in qkv.split(d, dim=-1))  # [batch, head, pos, dh]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
        scores = scores.masked_fill(future, float("-inf"))
        z = torch.softmax(scores, dim=-1) @ v  # [batch, head, pos, dh]
        z = z.transpose(1, 2).reshape(batch, pos, d)
        x = x + z @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        hidden = activation(cfg["activation_function"], m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + hidden @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], eps)
    unembed = w["wte.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ unembed.T  # [batch, pos, vocab]


# ---- the files --------------------------------------------------------------------------------------------

def write_safetensors(path, tensors):
    """tensors: name -> (dtype string, numpy array). Layout as described in SafeTensorsFile.cs."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (dtype, array) in tensors.items():
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def rounded(array):
    return [float("%.9g" % x) for x in array.reshape(-1)]


def make(cfg):
    folder = os.path.join(FIXTURES, cfg["folder"])
    os.makedirs(folder, exist_ok=True)
    w = random_weights(cfg)

    np_dtype = {"F32": np.float32, "F16": np.float16}[cfg["dtype"]]
    tensors = {}
    for name, t in w.items():
        stored = name if name == "lm_head.weight" else cfg["prefix"] + name
        tensors[stored] = (cfg["dtype"], t.numpy().astype(np_dtype))
    if cfg["mask_buffers"]:  # old GPT2Model files carry the causal mask as buffers; loaders must skip them
        n = cfg["n_positions"]
        for l in range(cfg["n_layer"]):
            tensors[f"h.{l}.attn.bias"] = ("F32", np.tril(np.ones((n, n), np.float32)).reshape(1, 1, n, n))
            tensors[f"h.{l}.attn.masked_bias"] = ("F32", np.array(-1e4, np.float32))
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors)

    config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "n_embd": cfg["n_embd"], "n_layer": cfg["n_layer"], "n_head": cfg["n_head"], "n_inner": cfg["n_inner"],
        "vocab_size": cfg["vocab_size"], "n_positions": cfg["n_positions"], "n_ctx": cfg["n_positions"],
        "activation_function": cfg["activation_function"], "layer_norm_epsilon": cfg["layer_norm_epsilon"],
        "tie_word_embeddings": cfg["tie_word_embeddings"], "bos_token_id": 0, "eos_token_id": 0,
        "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    golden = {"about": "logits from scripts/golden/make_gpt2_golden.py's own float64 GPT-2 forward; shape [batch, pos, vocab], flattened"}
    for key, tokens in (("single", SINGLE), ("batch", BATCH)):
        logits = forward(cfg, w, tokens)
        golden[key] = {"tokens": tokens, "shape": list(logits.shape), "logits": rounded(logits.numpy())}
    with open(os.path.join(folder, "golden.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))

    size = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))
    print(f"{cfg['folder']}: {size / 1024:.1f} KB, logits std {forward(cfg, w, SINGLE).std():.3f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    for cfg in CONFIGS:
        make(cfg)
