#!/usr/bin/python3
"""SAE fixtures for SharpLens's Saes tests, from an independent numpy implementation.

Run with Debian's python3 (numpy only):

    /usr/bin/python3 scripts/golden/make_sae_fixtures.py

For each SAE below this script draws random weights from a fixed seed, writes an SAELens folder (cfg.json +
sae_weights.safetensors, the safetensors bytes assembled here with struct/json), and computes in float64, from the
SAELens equations, the feature activations and the output for a fixed input X. One folder uses the pre-6.0
config layout (top-level hook_point, activation_fn_str/activation_fn_kwargs); one SAE is a Gemma Scope params.npz.

    Fixtures/sae/X.npy                     input [n, d_in], float32
    Fixtures/sae/<name>/cfg.json, sae_weights.safetensors[, sparsity.safetensors]
    Fixtures/sae/<name>/features.npy       [n, d_sae] float32
    Fixtures/sae/<name>/output.npy         [n, d_out] float32: the reconstruction (a transcoder's prediction)
    Fixtures/sae/gemma_scope/params.npz    + features.npy, output.npy
"""
import json
import os
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "SharpLens.Tests", "Fixtures", "sae")
D_IN, D_SAE, D_OUT, N = 16, 40, 12, 24


def write_safetensors(path, tensors):
    """8-byte header length, JSON header padded with spaces to 8-byte alignment, raw little-endian float32 data."""
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def relu(x):
    return np.maximum(x, 0.0)


def normalize_in(x, kind):
    """SAELens run-time normalization: returns the normalized input and a function that undoes it."""
    if kind == "constant_norm_rescale":
        scale = np.sqrt(x.shape[-1]) / np.linalg.norm(x, axis=-1, keepdims=True)
        return x * scale, lambda y: y / scale
    if kind == "layer_norm":
        mu = x.mean(-1, keepdims=True)
        centred = x - mu
        std = centred.std(-1, ddof=1, keepdims=True)
        return centred / (std + 1e-5), lambda y: y * std + mu
    return x, lambda y: y


def run(arch, w, x, k=0, apply_b_dec=True, norm="none"):
    """Features and output, float64, from the SAELens equations of each architecture."""
    transcoder = arch in ("transcoder", "skip_transcoder")
    xin, undo = (x, lambda y: y) if transcoder else normalize_in(x, norm)
    if apply_b_dec:
        xin = xin - w["b_dec"]
    if arch == "gated":
        gate = xin @ w["W_enc"] + w["b_gate"]
        mag = xin @ (w["W_enc"] * np.exp(w["r_mag"])) + w["b_mag"]
        f = (gate > 0) * relu(mag)
    else:
        pre = xin @ w["W_enc"] + w["b_enc"]
        if arch == "topk":
            f = np.zeros_like(pre)
            idx = np.argsort(-pre, axis=-1)[:, :k]
            np.put_along_axis(f, idx, relu(np.take_along_axis(pre, idx, axis=-1)), axis=-1)
        elif arch == "jumprelu":
            f = relu(pre) * (pre > w["threshold"])
        else:
            f = relu(pre)
    out = f @ w["W_dec"] + w["b_dec"]
    if arch == "skip_transcoder":
        out = out + x @ w["W_skip"].T  # SAELens stores W_skip [d_out, d_in]
    return f, (out if transcoder else undo(out))


def weights(arch, rng, d_out):
    w = {"W_enc": rng.normal(0, 0.4, (D_IN, D_SAE)), "W_dec": rng.normal(0, 0.3, (D_SAE, d_out)),
         "b_dec": rng.normal(0, 0.2, d_out)}
    if arch == "gated":
        w.update(b_gate=rng.normal(0, 0.3, D_SAE), r_mag=rng.normal(0, 0.3, D_SAE), b_mag=rng.normal(0, 0.3, D_SAE))
    else:
        w["b_enc"] = rng.normal(0, 0.3, D_SAE)
    if arch == "jumprelu":
        w["threshold"] = rng.uniform(0.1, 0.8, D_SAE)
    if arch == "skip_transcoder":
        w["W_skip"] = rng.normal(0, 0.2, (d_out, D_IN))
    return w


def cfg6(arch, d_out, k=None, norm="none", apply_b_dec=True, hook="blocks.1.hook_resid_pre", hook_out=None):
    c = {"architecture": arch, "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
         "apply_b_dec_to_input": apply_b_dec, "normalize_activations": norm, "reshape_activations": "none",
         "metadata": {"model_name": "gpt2-tiny", "hook_name": hook, "hook_head_index": None, "context_size": 128,
                      "prepend_bos": True, "dataset_path": "toy/dataset", "neuronpedia_id": None,
                      "hook_name_out": hook_out}}
    if k is not None:
        c["k"] = k
    if d_out != D_IN:
        c["d_out"] = d_out
    return c


def cfg_pre6_topk(k):
    return {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
            "model_name": "gpt2-tiny", "hook_point": "blocks.0.hook_resid_post", "hook_point_layer": 0,
            "hook_point_head_index": None, "activation_fn_str": "topk", "activation_fn_kwargs": {"k": k},
            "apply_b_dec_to_input": True, "finetuning_scaling_factor": False, "context_size": 128,
            "prepend_bos": True, "dataset_path": "toy/dataset", "normalize_activations": "none",
            "sae_lens_training_version": "3.13.0"}


def save_outputs(folder, f, out):
    np.save(os.path.join(folder, "features.npy"), f.astype("<f4"))
    np.save(os.path.join(folder, "output.npy"), out.astype("<f4"))


def main():
    rng = np.random.default_rng(20240601)
    os.makedirs(OUT, exist_ok=True)
    x = rng.normal(0, 1.0, (N, D_IN)).astype(np.float32)
    x[:, 0] += 2.0  # an offset, so layer_norm and b_dec matter
    np.save(os.path.join(OUT, "X.npy"), x)
    x64 = x.astype(np.float64)

    cases = [
        ("standard", "standard", D_IN, dict(), cfg6("standard", D_IN)),
        ("standard_layer_norm", "standard", D_IN, dict(norm="layer_norm"), cfg6("standard", D_IN, norm="layer_norm")),
        ("standard_norm_rescale", "standard", D_IN, dict(norm="constant_norm_rescale"), cfg6("standard", D_IN, norm="constant_norm_rescale")),
        ("topk_pre6", "topk", D_IN, dict(k=5), cfg_pre6_topk(5)),
        ("jumprelu", "jumprelu", D_IN, dict(), cfg6("jumprelu", D_IN)),
        ("gated", "gated", D_IN, dict(), cfg6("gated", D_IN)),
        ("transcoder", "transcoder", D_OUT, dict(apply_b_dec=False),
         cfg6("transcoder", D_OUT, apply_b_dec=False, hook="blocks.0.ln2.hook_normalized", hook_out="blocks.0.hook_mlp_out")),
        ("skip_transcoder", "skip_transcoder", D_OUT, dict(apply_b_dec=False),
         cfg6("skip_transcoder", D_OUT, apply_b_dec=False, hook="blocks.0.ln2.hook_normalized", hook_out="blocks.0.hook_mlp_out")),
    ]
    for name, arch, d_out, kw, cfg in cases:
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        w = weights(arch, rng, d_out)
        w32 = {k: v.astype(np.float32) for k, v in w.items()}
        write_safetensors(os.path.join(folder, "sae_weights.safetensors"), w32)
        with open(os.path.join(folder, "cfg.json"), "w") as fh:
            json.dump(cfg, fh, indent=2)
        f, out = run(arch, {k: v.astype(np.float64) for k, v in w32.items()}, x64, **kw)
        save_outputs(folder, f, out)
        if name == "standard":
            density = np.clip((f > 0).mean(0), 1e-6, None)
            write_safetensors(os.path.join(folder, "sparsity.safetensors"), {"sparsity": np.log10(density)})

    folder = os.path.join(OUT, "gemma_scope")
    os.makedirs(folder, exist_ok=True)
    w = {k: v.astype(np.float32) for k, v in weights("jumprelu", rng, D_IN).items()}
    np.savez(os.path.join(folder, "params.npz"), **w)
    f, out = run("jumprelu", {k: v.astype(np.float64) for k, v in w.items()}, x64, apply_b_dec=False)
    save_outputs(folder, f, out)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
