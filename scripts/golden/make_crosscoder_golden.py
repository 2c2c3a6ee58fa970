#!/usr/bin/python3
"""Crosscoder fixtures for SharpLens's diffing (src/SharpLens/Diffing/), written outside the project.

Run with Debian's python3 (numpy; torch 1.13 only to torch.save Kissane's cc_weights.pt):

    /usr/bin/python3 scripts/golden/make_crosscoder_golden.py

Writes into tests/SharpLens.Tests/Fixtures/crosscoder/:
  batchtopk/   a dictionary_learning BatchTopKCrossCoder folder: config.json + model.safetensors (the safetensors bytes
               laid out here with struct/json), with a normaliser (activation_mean/std, global scale), CROSSCODER code
               normalisation, k and a threshold.
  l1-mixed/    a dictionary_learning CrossCoder folder (L1, no normaliser: NaN mean/std) with MIXED code normalisation,
               three models.
  kissane/     cfg.json + cc_weights.pt (torch.save of W_enc [2, d, F], W_dec [F, 2, d], b_enc, b_dec).
Each folder also has X.npy [n, M, d] (float32 inputs) and, computed here in float64 from the equations (not from any
crosscoder library), f.npy [n, F] (dictionary_learning's encode: the code before code normalisation) and recon.npy
[n, M, d] (decode, denormalised).

The maths (dictionary_learning science-of-finetuning fork, dictionary.py):
  normalize(x) = (x - mean) * global_scale[:, None]        (when mean/std are not NaN), global_scale = target_rms / sqrt(sum_d std^2 + 1e-8)
  post = relu(einsum('bld,ldf->bf', x, W_enc) + b_enc)
  code_norm: CROSSCODER sum_l |W_dec[l, i]|; SAE |W_dec[:, i, :]|; MIXED a_sae * SAE + a_cc * CROSSCODER
  BatchTopK inference: f = post * (post * code_norm > threshold); L1: f = post
  decode(f) = einsum('bf,lfd->bld', f, W_dec) + b_dec, then x / (global_scale[:, None] + 1e-8) + mean
Kissane: f = relu(einsum('bnd,ndf->bf', x, W_enc) + b_enc); recon = einsum('bf,fnd->bnd', f, W_dec) + b_dec.
"""
import json
import os
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "SharpLens.Tests", "Fixtures", "crosscoder")

DTYPES = {np.dtype("float32"): "F32", np.dtype("int64"): "I64", np.dtype("int32"): "I32"}


def write_safetensors(path, tensors):
    """safetensors: u64 little-endian header length, JSON header {name: {dtype, shape, data_offsets}}, then the bytes."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in tensors:
        data = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": DTYPES[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def code_norm(W_dec, kind, a_sae=1.0, a_cc=0.1):
    cc = np.linalg.norm(W_dec, axis=2).sum(0)                  # [F]
    sae = np.sqrt((W_dec ** 2).sum(axis=(0, 2)))               # [F]
    return {"CROSSCODER": cc, "SAE": sae, "MIXED": a_sae * sae + a_cc * cc, "NONE": np.ones_like(cc)}[kind]


def dictionary_learning(name, rng, M, d, F, n, batchtopk, kind, normaliser):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    W_enc = (rng.standard_normal((M, d, F)) / np.sqrt(d)).astype(np.float32)
    W_dec = (rng.standard_normal((M, F, d)) * rng.uniform(0.05, 1.0, (M, F, 1)) / np.sqrt(d)).astype(np.float32)
    b_enc = (rng.standard_normal(F) * 0.1 - 0.05).astype(np.float32)
    b_dec = (rng.standard_normal((M, d)) * 0.1).astype(np.float32)
    X = (rng.standard_normal((n, M, d)) * 2.0 + 0.5).astype(np.float32)
    target_rms = np.float32(1.0 if batchtopk else 1.0)
    if normaliser:
        mean = X.mean(0).astype(np.float32) + np.float32(0.01)
        std = X.std(0).astype(np.float32)
        scale = (target_rms / np.sqrt((std.astype(np.float64) ** 2).sum(-1) + 1e-8)).astype(np.float32)
    else:
        mean = np.full((M, d), np.nan, np.float32)
        std = np.full((M, d), np.nan, np.float32)
        scale = np.ones(M, np.float32)

    x = X.astype(np.float64)
    if normaliser:
        x = (x - mean) * scale.astype(np.float64)[:, None]
    post = np.maximum(np.einsum("bld,ldf->bf", x, W_enc.astype(np.float64)) + b_enc, 0)
    cn = code_norm(W_dec.astype(np.float64), kind)
    tensors = [("target_rms", np.array(target_rms, np.float32)), ("activation_mean", mean), ("activation_std", std),
               ("activation_global_scale", scale), ("encoder.weight", W_enc), ("encoder.bias", b_enc),
               ("decoder.weight", W_dec), ("decoder.bias", b_dec),
               ("code_normalization_id", np.array({"CROSSCODER": 1, "SAE": 2, "MIXED": 3, "NONE": 4}[kind], np.int64))]
    config = {"activation_dim": d, "dict_size": F, "num_layers": M}
    if batchtopk:
        scaled = post * cn
        threshold = np.float32(np.quantile(scaled[scaled > 0], 0.8))   # keeps about a fifth of the active latents
        f = post * (scaled > threshold)
        k = 7
        tensors += [("k", np.array(k, np.int32)), ("threshold", np.array(threshold, np.float32))]
        config.update({"k": k, "norm_init_scale": 1.0, "target_rms": float(target_rms), "code_normalization": kind})
    else:
        f = post
        config.update({"same_init_for_all_layers": False, "norm_init_scale": None, "init_with_transpose": True, "encoder_layers": None,
                       "latent_processor": None, "num_decoder_layers": None, "code_normalization": kind,
                       "code_normalization_alpha_sae": 1.0, "code_normalization_alpha_cc": 0.1, "target_rms": None})
    recon = np.einsum("bf,lfd->bld", f, W_dec.astype(np.float64)) + b_dec
    if normaliser:
        recon = recon / (scale.astype(np.float64)[:, None] + 1e-8) + mean
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    with open(os.path.join(folder, "config.json"), "w") as out:
        json.dump(config, out, indent=2)
    np.save(os.path.join(folder, "X.npy"), X)
    np.save(os.path.join(folder, "f.npy"), f.astype(np.float32))
    np.save(os.path.join(folder, "recon.npy"), recon.astype(np.float32))
    active = (f > 0).sum(1).mean()
    print(f"{name}: M={M} d={d} F={F} n={n}, mean L0 {active:.2f}")


def kissane(rng, d=8, F=24, n=10):
    import collections
    import torch
    folder = os.path.join(OUT, "kissane")
    os.makedirs(folder, exist_ok=True)
    W_enc = (rng.standard_normal((2, d, F)) / np.sqrt(d)).astype(np.float32)
    W_dec = (rng.standard_normal((F, 2, d)) * 0.3).astype(np.float32)
    b_enc = (rng.standard_normal(F) * 0.1).astype(np.float32)
    b_dec = (rng.standard_normal((2, d)) * 0.1).astype(np.float32)
    X = rng.standard_normal((n, 2, d)).astype(np.float32)
    f = np.maximum(np.einsum("bnd,ndf->bf", X.astype(np.float64), W_enc.astype(np.float64)) + b_enc, 0)
    recon = np.einsum("bf,fnd->bnd", f, W_dec.astype(np.float64)) + b_dec
    state = collections.OrderedDict([("W_enc", torch.from_numpy(W_enc)), ("W_dec", torch.from_numpy(W_dec)),
                                     ("b_enc", torch.from_numpy(b_enc)), ("b_dec", torch.from_numpy(b_dec))])
    torch.save(state, os.path.join(folder, "cc_weights.pt"))
    cfg = {"seed": 49, "batch_size": 4096, "buffer_mult": 128, "lr": 5e-05, "num_tokens": 400000000, "l1_coeff": 2,
           "beta1": 0.9, "beta2": 0.999, "d_in": d, "dict_size": F, "seq_len": 1024, "enc_dtype": "fp32",
           "model_name": "gemma-2-2b", "site": "resid_pre", "device": "cuda:0", "model_batch_size": 4, "log_every": 100,
           "save_every": 30000, "dec_init_norm": 0.08, "hook_point": "blocks.14.hook_resid_pre",
           "wandb_project": "YOUR_WANDB_PROJECT", "wandb_entity": "YOUR_WANDB_ENTITY"}
    with open(os.path.join(folder, "cfg.json"), "w") as out:
        json.dump(cfg, out, indent=2)
    np.save(os.path.join(folder, "X.npy"), X)
    np.save(os.path.join(folder, "f.npy"), f.astype(np.float32))
    np.save(os.path.join(folder, "recon.npy"), recon.astype(np.float32))
    print(f"kissane: d={d} F={F} n={n}, mean L0 {(f > 0).sum(1).mean():.2f}")


if __name__ == "__main__":
    rng = np.random.default_rng(19)
    dictionary_learning("batchtopk", rng, M=2, d=8, F=32, n=12, batchtopk=True, kind="CROSSCODER", normaliser=True)
    dictionary_learning("l1-mixed", rng, M=3, d=6, F=20, n=9, batchtopk=False, kind="MIXED", normaliser=False)
    kissane(rng)
