"""Minimal safetensors read/write for float32/int32/int64 torch tensors (no `safetensors` package here)."""
from __future__ import annotations

import json
import struct
from typing import Dict

import numpy as np
import torch

_DT = {torch.float32: ("F32", np.float32), torch.int32: ("I32", np.int32), torch.int64: ("I64", np.int64)}
_NP = {"F32": np.float32, "I32": np.int32, "I64": np.int64}


def save(tensors: Dict[str, torch.Tensor], path, metadata: Dict[str, str] = None) -> None:
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        code, npdt = _DT[t.dtype]
        b = t.numpy().astype(npdt).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def load(path) -> Dict[str, torch.Tensor]:
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8: 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[8 + n + a: 8 + n + b], dtype=_NP[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out
