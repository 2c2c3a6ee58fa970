#!/usr/bin/python3
"""PyTorch .bin fixtures for SharpLens's restricted unpickler (src/SharpLens/Loading/Pickle/).

Run with Debian's python3 (torch 1.13):

    /usr/bin/python3 scripts/golden/make_pickle_fixtures.py

Writes into tests/SharpLens.Tests/Fixtures/pickle/:
  tensors.bin            torch.save of an OrderedDict state dict (with a module's _metadata attribute): float32, float16, bfloat16, int64, int32, a 0-d
                         scalar, a transposed (non-contiguous) view, a slice with a storage offset, and two
                         tensors sharing one storage.
  tensors.json           for every tensor: dtype, shape and its values (row-major, as float64 / int), read back
                         from the tensors themselves, so the C# test compares against what torch wrote.
  sharded/               the same tensors split over two shards + pytorch_model.bin.index.json.
  malicious-os-system.bin  a torch-style zip whose data.pkl, built opcode by opcode, calls posix.system to create
                         MARKER when unpickled by Python (checked below, in a scratch folder).
  malicious-eval.bin     the same through STACK_GLOBAL (protocol 4) and builtins.eval.
  gpt2-tiny-tied-bin/    the safetensors fixture gpt2-tiny-tied converted to config.json + pytorch_model.bin
                         (the safetensors bytes parsed here with struct/json); its logits must equal golden.json there.
"""
import collections
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "tests", "SharpLens.Tests", "Fixtures")
OUT = os.path.join(FIXTURES, "pickle")
MARKER = "/tmp/sharplens-pickle-fixture-was-executed"


def state_dict():
    g = torch.Generator().manual_seed(2024)
    base = torch.randn(4, 6, generator=g)
    shared = torch.randn(3, 5, generator=g)
    sd = collections.OrderedDict()
    sd["f32.matrix"] = torch.randn(2, 3, generator=g)
    sd["f16.vector"] = torch.randn(7, generator=g).half()
    sd["bf16.matrix"] = torch.randn(3, 2, generator=g).bfloat16()
    sd["i64.ids"] = torch.tensor([3, -1, 2 ** 40, 0], dtype=torch.int64)
    sd["i32.ids"] = torch.tensor([[1, 2], [-3, 4]], dtype=torch.int32)
    sd["scalar"] = torch.tensor(2.5)
    sd["transposed"] = base.t()                 # [6, 4], stride (1, 6)
    sd["offset_slice"] = base[1:, 2:5]          # [3, 3], storage offset 8, stride (6, 1)
    sd["shared.row0"] = shared[0]               # these two share one storage
    sd["shared.rows12"] = shared[1:]
    # What Module.state_dict() attaches; pickled as the OrderedDict's state (a BUILD opcode after its items).
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("block", {"version": 2})])
    assert not sd["transposed"].is_contiguous() and sd["offset_slice"].storage_offset() == 8
    assert sd["shared.row0"].storage().data_ptr() == sd["shared.rows12"].storage().data_ptr()
    return sd


def describe(sd):
    out = {}
    for name, t in sd.items():
        values = t.double() if t.is_floating_point() else t.long()
        out[name] = dict(dtype=str(t.dtype).replace("torch.", ""), shape=list(t.shape),
                         values=values.reshape(-1).tolist())
    return out


def zip_with_pickle(path, pickle_bytes):
    """A torch-style zip archive (ZIP_STORED, archive/ prefix) whose data.pkl is the given bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        # A fixed timestamp keeps the committed bytes identical from run to run.
        z.writestr(zipfile.ZipInfo("archive/data.pkl", date_time=(1980, 1, 1, 0, 0, 0)), pickle_bytes)
        z.writestr(zipfile.ZipInfo("archive/version", date_time=(1980, 1, 1, 0, 0, 0)), "3\n")


def malicious_protocol2():
    # PROTO 2; GLOBAL 'posix system'; BINUNICODE cmd; TUPLE1; REDUCE; STOP
    cmd = ("touch " + MARKER).encode()
    return (b"\x80\x02" + b"cposix\nsystem\n" + b"X" + struct.pack("<I", len(cmd)) + cmd + b"\x85" + b"R" + b".")


def malicious_protocol4():
    # PROTO 4; 'builtins' 'eval' STACK_GLOBAL; the expression; TUPLE1; REDUCE; STOP
    expr = ("__import__('os').system('touch " + MARKER + "')").encode()
    return (b"\x80\x04" + b"\x8c\x08builtins" + b"\x8c\x04eval" + b"\x93"
            + b"X" + struct.pack("<I", len(expr)) + expr + b"\x85" + b"R" + b".")


def check_really_malicious(pickle_bytes):
    """Unpickles in a child Python and checks the marker appears: the fixture must be a real attack."""
    if os.path.exists(MARKER):
        os.remove(MARKER)
    subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.loads(sys.stdin.buffer.read())"],
                   input=pickle_bytes, check=True)
    assert os.path.exists(MARKER), "the malicious pickle did not run its command"
    os.remove(MARKER)


def read_safetensors(path):
    """name -> torch tensor, parsed by hand: u64 header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    dtypes = {"F32": np.float32, "F16": np.float16}
    out = collections.OrderedDict()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(body[b:e], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()
    torch.save(sd, os.path.join(OUT, "tensors.bin"))
    with open(os.path.join(OUT, "tensors.json"), "w") as f:
        json.dump(describe(sd), f, indent=1)
    # Round trip through torch itself: what it loads back is what the JSON says.
    back = torch.load(os.path.join(OUT, "tensors.bin"))
    assert describe(back) == describe(sd)

    shard_dir = os.path.join(OUT, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    names = list(sd)
    shards = {"pytorch_model-00001-of-00002.bin": names[:5], "pytorch_model-00002-of-00002.bin": names[5:]}
    weight_map = {}
    for shard, keys in shards.items():
        torch.save(collections.OrderedDict((k, sd[k]) for k in keys), os.path.join(shard_dir, shard))
        weight_map.update({k: shard for k in keys})
    with open(os.path.join(shard_dir, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=1)

    for name, bytes_ in [("malicious-os-system.bin", malicious_protocol2()), ("malicious-eval.bin", malicious_protocol4())]:
        check_really_malicious(bytes_)
        zip_with_pickle(os.path.join(OUT, name), bytes_)

    gpt2_src = os.path.join(FIXTURES, "gpt2-tiny-tied")
    gpt2_dst = os.path.join(OUT, "gpt2-tiny-tied-bin")
    os.makedirs(gpt2_dst, exist_ok=True)
    shutil.copy(os.path.join(gpt2_src, "config.json"), gpt2_dst)
    torch.save(read_safetensors(os.path.join(gpt2_src, "model.safetensors")), os.path.join(gpt2_dst, "pytorch_model.bin"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
