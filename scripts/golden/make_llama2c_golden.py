#!/usr/bin/python3
"""A llama2.c checkpoint and its logits from an independent forward pass written after karpathy/llama2.c's run.c.

Run with Debian's python3 (numpy only):

    /usr/bin/python3 scripts/golden/make_llama2c_golden.py

It writes tests/SharpLens.Tests/Fixtures/llama2c/:
  - tiny-gqa-unshared.bin: the legacy ("version 0") format — seven int32 (dim, hidden_dim, n_layers, n_heads,
    n_kv_heads, vocab_size negated because the classifier is separate, seq_len), then float32 weights in export order
    (token embedding; per kind, every layer: attention norm, wq, wk, wv, wo, ffn norm, w1, w2, w3; final norm;
    freq_cis real and imaginary parts; the classifier);
  - golden.json: tokens and the float64 logits of run.c's algorithm on them, at every position.

The forward follows run.c step by step, one position at a time with a key/value cache: RMSNorm (eps 1e-5,
x * w / sqrt(mean(x^2) + eps)); q = wq x, k = wk x, v = wv x; rotary on ADJACENT PAIRS (q[i], q[i+1]) for even i with
frequency 10000^(-(i mod head_size) / head_size) — the convention SharpLens must convert from, since Hugging Face
rotates half against half; attention per head against the cached keys of its key/value group (head h uses kv head
h // (n_heads / n_kv_heads)), scaled by 1/sqrt(head_size); wo; residual; RMSNorm; w2(silu(w1 x) * w3 x); residual;
final RMSNorm; classifier.
"""
import json
import os
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "SharpLens.Tests", "Fixtures", "llama2c")

DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ = 32, 80, 2, 4, 2, 67, 16
HEAD = DIM // HEADS
TOKENS = [1, 17, 5, 60, 33, 33, 2, 9, 41, 66, 0, 12]


def weights(rng):
    def normal(*shape, std=0.2, mean=0.0):
        return (rng.standard_normal(shape) * std + mean).astype(np.float32)

    kv = KV_HEADS * HEAD
    w = {"tok_embeddings": normal(VOCAB, DIM, std=0.5)}
    w["attention_norm"] = [normal(DIM, std=0.1, mean=1.0) for _ in range(LAYERS)]
    w["wq"] = [normal(DIM, DIM) for _ in range(LAYERS)]
    w["wk"] = [normal(kv, DIM) for _ in range(LAYERS)]
    w["wv"] = [normal(kv, DIM) for _ in range(LAYERS)]
    w["wo"] = [normal(DIM, DIM) for _ in range(LAYERS)]
    w["ffn_norm"] = [normal(DIM, std=0.1, mean=1.0) for _ in range(LAYERS)]
    w["w1"] = [normal(HIDDEN, DIM) for _ in range(LAYERS)]
    w["w2"] = [normal(DIM, HIDDEN) for _ in range(LAYERS)]
    w["w3"] = [normal(HIDDEN, DIM) for _ in range(LAYERS)]
    w["norm"] = normal(DIM, std=0.1, mean=1.0)
    w["output"] = normal(VOCAB, DIM, std=0.3)
    return w


def write_bin(path, w):
    freqs = 1.0 / (10000.0 ** (np.arange(0, HEAD, 2)[: HEAD // 2] / HEAD))
    angles = np.outer(np.arange(SEQ), freqs)
    with open(path, "wb") as f:
        f.write(struct.pack("7i", DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, -VOCAB, SEQ))
        f.write(w["tok_embeddings"].tobytes())
        for kind in ["attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"]:
            for layer in range(LAYERS):
                f.write(w[kind][layer].tobytes())
        f.write(w["norm"].tobytes())
        f.write(np.cos(angles).astype(np.float32).tobytes())
        f.write(np.sin(angles).astype(np.float32).tobytes())
        f.write(w["output"].tobytes())


def rmsnorm(x, weight):
    return x * weight / np.sqrt(np.mean(x * x) + 1e-5)


def rotate_pairs(vec, pos):
    out = vec.copy()
    for i in range(0, len(vec), 2):
        freq = 1.0 / 10000.0 ** ((i % HEAD) / HEAD)
        c, s = np.cos(pos * freq), np.sin(pos * freq)
        out[i], out[i + 1] = vec[i] * c - vec[i + 1] * s, vec[i] * s + vec[i + 1] * c
    return out


def forward(w, tokens):
    w = {k: ([a.astype(np.float64) for a in v] if isinstance(v, list) else v.astype(np.float64)) for k, v in w.items()}
    keys = [[] for _ in range(LAYERS)]
    values = [[] for _ in range(LAYERS)]
    logits = []
    group = HEADS // KV_HEADS
    for pos, token in enumerate(tokens):
        x = w["tok_embeddings"][token].copy()
        for l in range(LAYERS):
            xb = rmsnorm(x, w["attention_norm"][l])
            q = rotate_pairs(w["wq"][l] @ xb, pos)
            k = rotate_pairs(w["wk"][l] @ xb, pos)
            v = w["wv"][l] @ xb
            keys[l].append(k)
            values[l].append(v)
            heads = []
            for h in range(HEADS):
                kvh = h // group
                qh = q[h * HEAD:(h + 1) * HEAD]
                ks = np.array([kk[kvh * HEAD:(kvh + 1) * HEAD] for kk in keys[l]])
                vs = np.array([vv[kvh * HEAD:(kvh + 1) * HEAD] for vv in values[l]])
                scores = ks @ qh / np.sqrt(HEAD)
                att = np.exp(scores - scores.max())
                att /= att.sum()
                heads.append(att @ vs)
            x = x + w["wo"][l] @ np.concatenate(heads)
            xb = rmsnorm(x, w["ffn_norm"][l])
            gate = w["w1"][l] @ xb
            x = x + w["w2"][l] @ (gate / (1.0 + np.exp(-gate)) * (w["w3"][l] @ xb))
        logits.append(w["output"] @ rmsnorm(x, w["norm"]))
    return np.array(logits)


def main():
    os.makedirs(OUT, exist_ok=True)
    w = weights(np.random.default_rng(20261125))
    write_bin(os.path.join(OUT, "tiny-gqa-unshared.bin"), w)
    logits = forward(w, TOKENS)
    golden = {
        "about": "logits of scripts/golden/make_llama2c_golden.py's run.c-style float64 forward; shape [pos, vocab], flattened",
        "tokens": TOKENS, "shape": list(logits.shape), "logits": [float(v) for v in logits.reshape(-1)],
    }
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f)
    print("wrote", OUT, logits.shape, "logit std", float(logits.std()))


if __name__ == "__main__":
    main()
