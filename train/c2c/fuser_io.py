"""Save/load a list of per-receiver-layer C2CProjectors in the c2c-web fuser format (docs/fuser-format.md):
a folder with fuser.json and fuser.safetensors, tensors named "{layer}.{official state-dict key}".

Writes format_version 2 (scalar_mlp2 inner width = hidden_dim, as upstream builds it). Reads 2, and 1 only
where hidden_dim == intermediate_dim: version 1 gave scalar_mlp2 the intermediate width, which is the same
layout exactly when the two widths are equal."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from .projector import C2CProjector, terminal_layer_map
from .safetensors_io import read_safetensors, write_safetensors

_ST_DTYPE = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
FORMAT_VERSION = 2


def save_fuser(directory: str, projectors: Sequence[C2CProjector], sharer_num_layers: int,
               layer_map: Union[str, List[int]] = "terminal", dtype: str = "float32",
               metadata: Optional[Dict[str, Any]] = None, include_gate_temperature: bool = False) -> Dict[str, Any]:
    """Writes fuser.json + fuser.safetensors; returns the fuser.json dict. All projectors must share dims."""
    if dtype not in _ST_DTYPE:
        raise ValueError(f"dtype must be one of {sorted(_ST_DTYPE)}, got {dtype}")
    if not projectors:
        raise ValueError("need at least one projector")
    p0 = projectors[0]
    for i, p in enumerate(projectors):
        dims = (p.source_dim, p.target_dim, p.source_num_heads, p.target_num_heads, p.hidden_dim,
                p.intermediate_dim, p.num_layers)
        if dims != (p0.source_dim, p0.target_dim, p0.source_num_heads, p0.target_num_heads, p0.hidden_dim,
                    p0.intermediate_dim, p0.num_layers):
            raise ValueError(f"projector {i} dims {dims} differ from projector 0")
    if isinstance(layer_map, list) and len(layer_map) != len(projectors):
        raise ValueError(f"layer_map has {len(layer_map)} entries for {len(projectors)} receiver layers")
    st = _ST_DTYPE[dtype]
    tensors = {}
    for layer, proj in enumerate(projectors):
        for key, value in proj.state_dict().items():
            if key == "gate_temperature" and not include_gate_temperature:
                continue
            tensors[f"{layer}.{key}"] = (st, value.detach().to(torch.float32).cpu().numpy())
    os.makedirs(directory, exist_ok=True)
    write_safetensors(os.path.join(directory, "fuser.safetensors"), tensors)
    manifest = {
        "format": "c2c-fuser",
        "format_version": FORMAT_VERSION,
        "projector_class": "C2CProjector",
        "dtype": dtype,
        "receiver": {"num_layers": len(projectors), "num_kv_heads": p0.target_num_heads, "head_dim": p0.target_dim},
        "sharer": {"num_layers": sharer_num_layers, "num_kv_heads": p0.source_num_heads, "head_dim": p0.source_dim},
        "hidden_dim": p0.hidden_dim,
        "intermediate_dim": p0.intermediate_dim,
        "num_mlp_layers": p0.num_layers,
        "rms_norm_eps": 1e-6,
        "scalar_temperature": p0.scalar_temperature,
        "layer_map": layer_map,
        "files": ["fuser.safetensors"],
        "alignment": {"enabled": False, "strategy": "longest"},
        "metadata": metadata or {},
    }
    with open(os.path.join(directory, "fuser.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def check_manifest_version(m: Dict[str, Any]) -> None:
    """Refuses what this reader cannot read correctly (the same rule as src/fuser/manifest.ts)."""
    if m.get("format") != "c2c-fuser":
        raise ValueError(f"fuser.json: format must be 'c2c-fuser', got {m.get('format')!r}")
    version = m.get("format_version")
    if version not in (1, FORMAT_VERSION):
        raise ValueError(f"fuser.json: format_version must be 1 or {FORMAT_VERSION}, got {version!r}")
    if version == 1 and m.get("hidden_dim") != m.get("intermediate_dim"):
        raise ValueError(f"fuser.json: format_version 1 with hidden_dim ({m.get('hidden_dim')}) != intermediate_dim "
                         f"({m.get('intermediate_dim')}) stores scalar_mlp2 at the intermediate width, which upstream "
                         f"never builds; re-convert it (format_version {FORMAT_VERSION})")


def load_fuser(directory: str) -> Dict[str, Any]:
    """Loads a c2c-web fuser folder: {'manifest', 'projectors' (eval mode, float32), 'layer_map' (resolved)}.
    Every expected tensor must be present with its exact shape and no unknown tensor may appear."""
    with open(os.path.join(directory, "fuser.json")) as f:
        m = json.load(f)
    check_manifest_version(m)
    arrays: Dict[str, np.ndarray] = {}
    for name in m["files"]:
        a, _, _ = read_safetensors(os.path.join(directory, name))
        dup = set(a) & set(arrays)
        if dup:
            raise ValueError(f"tensor {sorted(dup)[0]} appears in more than one file")
        arrays.update(a)
    r, s = m["receiver"], m["sharer"]
    projectors = []
    for layer in range(r["num_layers"]):
        proj = C2CProjector(source_dim=s["head_dim"], target_dim=r["head_dim"], source_num_heads=s["num_kv_heads"],
                            target_num_heads=r["num_kv_heads"], hidden_dim=m["hidden_dim"],
                            intermediate_dim=m["intermediate_dim"], num_layers=m["num_mlp_layers"], dropout=0.0)
        expected = proj.state_dict()
        state = {}
        for key, ref in expected.items():
            name = f"{layer}.{key}"
            if name not in arrays:
                if key == "gate_temperature":
                    state[key] = ref
                    continue
                raise ValueError(f"missing tensor {name}")
            arr = arrays.pop(name)
            if key.endswith("gate_logit") and arr.shape == (1,):
                arr = arr.reshape(())
            if tuple(arr.shape) != tuple(ref.shape):
                raise ValueError(f"tensor {name} has shape {list(arr.shape)}, expected {list(ref.shape)}")
            state[key] = torch.from_numpy(np.asarray(arr, dtype=np.float32))
        proj.load_state_dict(state, strict=True)
        proj.eval()
        projectors.append(proj)
    if arrays:
        raise ValueError(f"unexpected tensor {sorted(arrays)[0]}")
    lm = m["layer_map"]
    layer_map = terminal_layer_map(r["num_layers"], s["num_layers"]) if lm == "terminal" else [int(x) for x in lm]
    return {"manifest": m, "projectors": projectors, "layer_map": layer_map}
