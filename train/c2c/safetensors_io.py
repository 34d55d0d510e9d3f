"""Minimal safetensors writer/reader on numpy (the `safetensors` package is not installed here).

Layout: u64 little-endian header length, JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}
padded with spaces to a multiple of 8, then the raw little-endian tensor bytes. Supports F32, F16, BF16, I32
(BF16 travels as uint16 holding the top half of the f32 bits).
"""
from __future__ import annotations

import json
import struct
from typing import Dict, Optional, Tuple

import numpy as np

_NP_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "I32": np.dtype("<i4"),
              "F64": np.dtype("<f8")}


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round float32 to bfloat16 (round to nearest, ties to even), returned as uint16 bit patterns."""
    f = np.asarray(x, dtype=np.float32)
    u = np.ascontiguousarray(f).reshape(-1).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    bits = rounded.astype(np.uint16).reshape(f.shape)
    nan = np.isnan(f)
    bits[nan] = 0x7FC0  # keep NaN a NaN (the rounding add could carry it into Inf)
    return bits


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    b = np.asarray(bits, dtype=np.uint16)
    return (b.reshape(-1).astype(np.uint32) << 16).view(np.float32).reshape(b.shape)


def round_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 values exactly representable in bfloat16 (what a bf16 store + widen gives back)."""
    return bf16_bits_to_f32(f32_to_bf16_bits(x))


def _encode(arr: np.ndarray, dtype: str) -> bytes:
    if dtype == "BF16":
        return f32_to_bf16_bits(np.asarray(arr, dtype=np.float32)).astype("<u2").tobytes()
    if dtype not in _NP_DTYPES:
        raise ValueError(f"unsupported safetensors dtype {dtype}")
    return np.ascontiguousarray(arr, dtype=_NP_DTYPES[dtype]).tobytes()


def write_safetensors(path: str, tensors: Dict[str, Tuple[str, np.ndarray]],
                      metadata: Optional[Dict[str, str]] = None) -> None:
    """tensors: name -> (dtype, array); arrays are converted to the dtype (BF16 rounds from float32)."""
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        dtype, arr = tensors[name]
        arr = np.asarray(arr)
        blob = _encode(arr, dtype)
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str], Dict[str, str]]:
    """Returns (arrays, dtypes, metadata). BF16/F16 are widened to float32; I32 stays int32."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors header")
    (hlen,) = struct.unpack("<Q", raw[:8])
    if 8 + hlen > len(raw):
        raise ValueError(f"{path}: header length {hlen} exceeds file size")
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    data = raw[8 + hlen:]
    metadata = header.pop("__metadata__", {}) or {}
    arrays: Dict[str, np.ndarray] = {}
    dtypes: Dict[str, str] = {}
    for name, info in header.items():
        dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _NP_DTYPES:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        if end > len(data) or start > end:
            raise ValueError(f"{path}: tensor {name} offsets {start}..{end} out of range")
        arr = np.frombuffer(data[start:end], dtype=_NP_DTYPES[dtype])
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: tensor {name} has {arr.size} elements, shape {shape}")
        if dtype == "BF16":
            arr = bf16_bits_to_f32(arr)
        elif dtype == "F16":
            arr = arr.astype(np.float32)
        arrays[name] = arr.reshape(shape).copy()
        dtypes[name] = dtype
    return arrays, dtypes, metadata
