#!/usr/bin/python3
"""Write tiny C2C fuser checkpoints in the *official* release layout, plus expected outputs.

For each fixture under test/fixtures/official/<name>/:
  config.json                      training-recipe-like copy (model.base_model, teacher_model, alignment)
  final/projector_{i}.pt           torch.save(state_dict): PyTorch zip pickle, bf16 tensors, official keys
  final/projector_{i}.json         {"class": "C2CProjector", "init_args": {...}} as the registry writes it
  final/projector_config.json      {"0": {"1": {"<target_layer>": [[<source_layer>, <projector_idx>]]}}}
  weights.safetensors              every state-dict tensor widened to F32, named "{i}.{key}" (loader check)
  expected.safetensors             KV inputs and fused outputs (F32), computed in float64 from the bf16 weights

a torch-2.x-style re-wrap of one projector under test/fixtures/official/variants/, and adversarial
pickles under test/fixtures/official/malicious/ (zips that a naive torch.load would
execute or choke on). Run with Debian's /usr/bin/python3 (torch 1.13); seeded, and zip timestamps are
fixed, so reruns write identical bytes.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "official"
sys.path.insert(0, str(ROOT / "train"))
from c2c.projector import C2CProjector  # noqa: E402

def projector_shapes(a):
    """Official state-dict key → shape for init_args `a` (gate_temperature buffer included), written from
    upstream's C2CProjector facts (c2c-reference §1.2) and cross-checked against train/c2c/projector.py below."""
    in_dim = a["source_dim"] * a["source_num_heads"]
    out_dim = a["target_dim"] * a["target_num_heads"]
    h, i, ht = a["hidden_dim"], a["intermediate_dim"], a["target_num_heads"]
    # (module, blocks, FFN inner width): scalar_mlp2's inner width is hidden_dim, not intermediate_dim.
    ffn = (("mlp1", 1, i), ("scalar_mlp2", 1, h), ("proj_mlp2", a["num_layers"] - 2, i))
    shapes = {}
    for p in ("key", "value"):
        shapes[f"{p}_in.weight"] = (h, in_dim + out_dim)
        shapes[f"{p}_in.bias"] = (h,)
        for m, blocks, inner in ffn:
            for b in range(blocks):
                shapes[f"{p}_{m}.blocks.{b}.norm.weight"] = (h,)
                shapes[f"{p}_{m}.blocks.{b}.w1.weight"] = (inner, h)
                shapes[f"{p}_{m}.blocks.{b}.w2.weight"] = (h, inner)
        shapes[f"{p}_scalar_head.weight"] = (ht, h)
        shapes[f"{p}_scalar_head.bias"] = (ht,)
        shapes[f"{p}_proj_out.weight"] = (out_dim, h)
        shapes[f"{p}_proj_out.bias"] = (out_dim,)
    shapes["key_gate_logit"] = ()
    shapes["value_gate_logit"] = ()
    shapes["gate_temperature"] = ()
    return shapes


def random_state_dict(a, gen, gates, shared_gate_storage):
    """bf16 tensors with realistic scales: Linear ~ U(±1/sqrt(in)), RMSNorm weights near 1."""
    sd = {}
    for key, shape in projector_shapes(a).items():
        if key.endswith("gate_logit") or key == "gate_temperature":
            continue
        if key.endswith("norm.weight"):
            t = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        elif key.endswith("weight"):
            bound = 1.0 / np.sqrt(shape[1])
            t = (torch.rand(shape, generator=gen) * 2 - 1) * bound * 1.5
        else:
            t = 0.1 * torch.randn(shape, generator=gen)
        sd[key] = t.to(torch.bfloat16)
    if shared_gate_storage:
        # Both gate logits as views of one 2-element storage: the value gate then has storage_offset 1,
        # which a loader must honour (torch.save keeps shared storages shared).
        g = torch.tensor(gates, dtype=torch.bfloat16)
        sd["key_gate_logit"], sd["value_gate_logit"] = g[0], g[1]
    else:
        sd["key_gate_logit"] = torch.tensor(gates[0], dtype=torch.bfloat16)
        sd["value_gate_logit"] = torch.tensor(gates[1], dtype=torch.bfloat16)
    sd["gate_temperature"] = torch.tensor(0.001, dtype=torch.bfloat16)
    return sd


def check_against_reference_projector(a, sd):
    """The PyTorch C2CProjector of train/c2c (upstream's module structure) must have exactly our key set and
    shapes; returns it (float64, eval, holding our weights) so the numpy forward below is cross-checked."""
    ref = C2CProjector(**{k: v for k, v in a.items() if k != "dtype"})
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    ours = {k: tuple(v.shape) for k, v in sd.items()}
    if ref_shapes != ours:
        raise SystemExit(f"key/shape mismatch with train/c2c/projector.py: {sorted(set(ref_shapes) ^ set(ours))}")
    ref.load_state_dict({k: v.to(torch.float64) for k, v in sd.items()}, strict=True)
    return ref.double().eval()


def as_module_state_dict(a, sd, via_module):
    """What `projector.state_dict()` returns: an OrderedDict carrying `_metadata` (pickled through BUILD).
    Without storage sharing to preserve it is literally that (upstream's key order included)."""
    if via_module:
        m = C2CProjector(**{k: v for k, v in a.items() if k != "dtype"}, dtype=torch.bfloat16)
        m.load_state_dict(sd, strict=True)
        return m.state_dict()
    out = collections.OrderedDict(sd)
    modules = sorted({k.rsplit(".", 1)[0] for k in sd if "." in k})
    out._metadata = collections.OrderedDict([("", {"version": 1})] + [(m, {"version": 1}) for m in modules])
    return out


# ---- float64 forward, written from the C2C math (reference notes §1.3) ----

def _ffn(x, sd, prefix, b, eps=1e-6):
    from math import sqrt
    g = sd[f"{prefix}.blocks.{b}.norm.weight"]
    w1 = sd[f"{prefix}.blocks.{b}.w1.weight"]
    w2 = sd[f"{prefix}.blocks.{b}.w2.weight"]
    n = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g
    u = n @ w1.T
    erf = np.vectorize(__import__("math").erf)
    u = 0.5 * u * (1.0 + erf(u / sqrt(2.0)))
    return x + u @ w2.T


def fuse_path(sd, p, a, s, r):
    """s: [Hs, N, Ds], r: [Ht, N, Dt] float64 → fused [Ht, N, Dt] for path p ('key'/'value')."""
    hs, n, ds = s.shape
    ht, _, dt = r.shape
    if sd[f"{p}_gate_logit"].item() <= 0:
        return r.copy()
    sf = s.transpose(1, 0, 2).reshape(n, hs * ds)
    rf = r.transpose(1, 0, 2).reshape(n, ht * dt)
    x = np.concatenate([sf, rf], axis=1)
    h0 = x @ sd[f"{p}_in.weight"].T + sd[f"{p}_in.bias"]
    h1 = _ffn(h0, sd, f"{p}_mlp1", 0)
    h2 = h1
    for b in range(a["num_layers"] - 2):
        h2 = _ffn(h2, sd, f"{p}_proj_mlp2", b)
    proj = h2 @ sd[f"{p}_proj_out.weight"].T + sd[f"{p}_proj_out.bias"]
    h3 = _ffn(h1, sd, f"{p}_scalar_mlp2", 0)
    z = h3 @ sd[f"{p}_scalar_head.weight"].T + sd[f"{p}_scalar_head.bias"]
    w = 1.0 / (1.0 + np.exp(-z))  # [N, Ht]
    out = rf + (proj.reshape(n, ht, dt) * w[:, :, None]).reshape(n, ht * dt)
    return out.reshape(n, ht, dt).transpose(1, 0, 2)


# ---- safetensors written by hand (F32 / I32 only) ----

def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dt = {np.dtype("float32"): "F32", np.dtype("int32"): "I32"}[arr.dtype]
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_checkpoint(name, seed, recv, shr, hidden, inter, num_layers, layer_map, gates, recipe_model,
                    shared_gate_storage=False):
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    root = OUT / name
    final = root / "final"
    final.mkdir(parents=True, exist_ok=True)
    a = {
        "source_dim": shr["head_dim"], "target_dim": recv["head_dim"],
        "source_num_heads": shr["kv_heads"], "target_num_heads": recv["kv_heads"],
        "hidden_dim": hidden, "intermediate_dim": inter, "num_layers": num_layers,
        "dropout": 0.1, "initial_temperature": 1.0, "final_temperature": 0.001, "anneal_steps": 1929,
        "dtype": {"__type__": "torch.dtype", "value": "bfloat16"},
    }
    config = {
        "model": {**recipe_model, "projector": {"type": "C2CProjector", "params": {
            k: v for k, v in a.items() if k not in ("source_dim", "target_dim", "source_num_heads", "target_num_heads", "dtype")}},
            "mapping": "last_aligned"},
        "training": {"learning_rate": 1e-4, "num_epochs": 1, "seed": 42},
        "output": {"output_dir": f"local/checkpoints/{name}"},
    }
    (root / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    weights, sds, refs = {}, [], []
    for t in range(recv["layers"]):
        sd = random_state_dict(a, gen, gates[t], shared_gate_storage)
        refs.append(check_against_reference_projector(a, sd))
        torch.save(as_module_state_dict(a, sd, not shared_gate_storage), final / f"projector_{t}.pt")
        (final / f"projector_{t}.json").write_text(json.dumps({"class": "C2CProjector", "init_args": a}, indent=2))
        sd64 = {k: v.to(torch.float64).numpy() for k, v in sd.items()}
        sds.append(sd64)
        for k, v in sd64.items():
            weights[f"{t}.{k}"] = v.astype(np.float32)
    # projector_idx = target layer (one projector per receiver layer); keys are strings after json.dump.
    pmap = {"0": {"1": {str(t): [[layer_map[t], t]] for t in range(recv["layers"])}}}
    (final / "projector_config.json").write_text(json.dumps(pmap))
    write_safetensors(root / "weights.safetensors", weights)

    exp = {}
    max_ref_diff = 0.0
    for c, seq in enumerate((3, 5)):
        exp[f"c{c}.seq"] = np.array([seq], dtype=np.int32)
        sharer = {}
        for j in range(shr["layers"]):
            for p in ("key", "value"):
                v = rng.standard_normal((shr["kv_heads"], seq, shr["head_dim"])).astype(np.float32)
                sharer[(j, p)] = v
                exp[f"c{c}.sharer.{j}.{p}"] = v
        for t in range(recv["layers"]):
            for p in ("key", "value"):
                r = rng.standard_normal((recv["kv_heads"], seq, recv["head_dim"])).astype(np.float32)
                exp[f"c{c}.receiver.{t}.{p}"] = r
                fused = fuse_path(sds[t], p, a, sharer[(layer_map[t], p)].astype(np.float64), r.astype(np.float64))
                exp[f"c{c}.fused.{t}.{p}"] = fused.astype(np.float32)
            # independent check of the numpy forward against the PyTorch module
            sk, sv = (torch.from_numpy(sharer[(layer_map[t], p)]).double()[None] for p in ("key", "value"))
            rk, rv = (torch.from_numpy(exp[f"c{c}.receiver.{t}.{p}"]).double()[None] for p in ("key", "value"))
            with torch.no_grad():
                fk, fv = refs[t]((sk, sv), (rk, rv))
            for p, f in (("key", fk), ("value", fv)):
                max_ref_diff = max(max_ref_diff, float(np.abs(f[0].numpy() - exp[f"c{c}.fused.{t}.{p}"]).max()))
    if max_ref_diff > 1e-5:
        raise SystemExit(f"{name}: numpy forward differs from train/c2c/projector.py by {max_ref_diff}")
    write_safetensors(root / "expected.safetensors", exp, {"num_cases": 2, "layer_map": json.dumps(layer_map)})
    print(f"{name}: {recv['layers']} projectors, map {layer_map}, max |numpy - PyTorch projector| = {max_ref_diff}")


# ---- adversarial pickles ----

class _Exec:
    """Pickles as a call of `fn(*args)`: what an attacker puts in a .pt file."""
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def torch_like_zip(path, pkl, extra=None):
    """A zip shaped like torch.save output (prefix/data.pkl, prefix/version) around an arbitrary pickle."""
    prefix = path.stem
    entries = {"data.pkl": pkl, **(extra or {}), "version": b"3\n"}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for k, v in entries.items():
            z.writestr(zipfile.ZipInfo(f"{prefix}/{k}", date_time=(1980, 1, 1, 0, 0, 0)), v)  # fixed time: reproducible


def make_torch2_style(src, dst):
    """Re-wrap a torch 1.13 .pt the way torch >= 2.1 writes it: `archive/` prefix, a `byteorder` record,
    `.data/serialization_id`, and every record's data 64-byte aligned through local-header extra padding."""
    with zipfile.ZipFile(src) as z:
        prefix = z.namelist()[0].split("/")[0]
        records = [(n.split("/", 1)[1], z.read(n)) for n in z.namelist()]
    records = [(".data/serialization_id", b"0123456789012345678901234567890123456789"), ("byteorder", b"little")] + records
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in records:
            info = zipfile.ZipInfo(f"archive/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            header_end = buf.tell() + 30 + len(info.filename.encode())
            pad = (-(header_end + 4)) % 64
            info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # 'FB' padding field, as PyTorch uses
            z.writestr(info, data)
    dst.write_bytes(buf.getvalue())
    with zipfile.ZipFile(dst) as z:  # the alignment really holds
        for info in z.infolist():
            if "/data/" in info.filename:
                assert (info.header_offset + 30 + len(info.filename) + len(info.extra)) % 64 == 0
    assert prefix != "archive"


def make_malicious():
    d = OUT / "malicious"
    d.mkdir(parents=True, exist_ok=True)
    marker = "c2c_pwned_marker"  # relative: the test checks it never appears in the working directory
    # GLOBAL 'posix system' (os.system pickles under its real module name) with a REDUCE.
    torch_like_zip(d / "os_system.pt", pickle.dumps({"w": _Exec(os.system, (f"touch {marker}",))}, protocol=2))
    # builtins eval.
    torch_like_zip(d / "builtins_eval.pt", pickle.dumps(_Exec(eval, (f"open('{marker}','w')",)), protocol=2))
    # A whitelisted-looking module but an unknown callable, reduced inside an otherwise valid state dict.
    sd = {"key_in.bias": torch.zeros(2, dtype=torch.bfloat16)}
    buf = io.BytesIO()
    torch.save(sd, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        name = [n for n in z.namelist() if n.endswith("data.pkl")][0]
        good = z.read(name)
        storage = z.read(name.replace("data.pkl", "data/0"))
    evil = good.replace(b"ctorch._utils\n_rebuild_tensor_v2\n", b"ctorch._utils\n_rebuild_xxxxxx_v2\n")
    assert evil != good and len(evil) == len(good)
    torch_like_zip(d / "unknown_callable.pt", evil, {"data/0": storage})
    # A valid state dict for reference (the tests mutate it in TS to build the remaining cases).
    torch_like_zip(d / "valid_small.pt", good, {"data/0": storage})
    print("malicious fixtures:", sorted(p.name for p in d.iterdir()))


def main():
    torch.manual_seed(0)
    # Qwen-like pair: same tokenizer, receiver deeper than sharer (terminal map clamps at 0), one gate closed.
    make_checkpoint(
        "tiny_qwen", 7,
        recv={"layers": 4, "kv_heads": 2, "head_dim": 8}, shr={"layers": 3, "kv_heads": 1, "head_dim": 8},
        hidden=16, inter=24, num_layers=3,
        layer_map=[0, 0, 1, 2],
        gates=[(1.5, 0.75), (2.0, -0.5), (0.25, 1.0), (3.0, 3.0)],
        recipe_model={"base_model": "Qwen/Qwen3-0.6B", "teacher_model": "Qwen/Qwen2.5-0.5B-Instruct",
                      "is_do_alignment": False, "alignment_strategy": "first"},
    )
    # Llama-like pair: alignment on, four-layer MLP (two proj_mlp2 blocks), a depth-normalized map that is
    # NOT the terminal map (the loader must read it, not recompute it), gate logits sharing one storage.
    make_checkpoint(
        "tiny_llama_knn", 11,
        recv={"layers": 3, "kv_heads": 2, "head_dim": 4}, shr={"layers": 5, "kv_heads": 2, "head_dim": 6},
        hidden=12, inter=8, num_layers=4,
        layer_map=[0, 2, 4],
        gates=[(0.5, 1.25), (-1.0, 2.0), (1.0, 0.125)],
        recipe_model={"base_model": "Qwen/Qwen3-0.6B", "teacher_model": "meta-llama/Llama-3.2-1B-Instruct",
                      "is_do_alignment": True, "alignment_strategy": "longest"},
        shared_gate_storage=True,
    )
    (OUT / "variants").mkdir(exist_ok=True)
    make_torch2_style(OUT / "tiny_qwen" / "final" / "projector_0.pt", OUT / "variants" / "torch2_style_projector_0.pt")
    make_malicious()


if __name__ == "__main__":
    main()
