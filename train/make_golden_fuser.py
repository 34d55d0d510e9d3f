"""Writes the golden fuser fixtures under test/fixtures/fuser/<config>/ from the PyTorch C2CProjector.

Each folder: fuser.json + fuser.safetensors (c2c-web format) and cases.safetensors with, per case c:
`c{c}.seq` (I32 [1]), `c{c}.receiver.{l}.key|value` [Hr, seq, Dr], `c{c}.sharer.{j}.key|value` [Hs, seq, Ds],
`c{c}.fused.{l}.key|value` [Hr, seq, Dr] (all F32). Expected outputs are computed in float64 from the stored
(float32, or bf16-rounded) weights and inputs, then stored as float32.

Run: /usr/bin/python3 train/make_golden_fuser.py   (deterministic: torch.manual_seed per config)
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from c2c.fuser_io import save_fuser  # noqa: E402
from c2c.projector import C2CProjector, terminal_layer_map  # noqa: E402
from c2c.safetensors_io import round_to_bf16, write_safetensors  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_ROOT = os.path.join(REPO, "test", "fixtures", "fuser")
GENERATOR = "train/make_golden_fuser.py"


@dataclass
class Config:
    name: str
    seed: int
    receiver: Tuple[int, int, int]  # layers, kv heads, head dim
    sharer: Tuple[int, int, int]
    hidden: int
    intermediate: int
    seqs: List[int]
    num_mlp_layers: int = 3
    dtype: str = "float32"
    layer_map: Union[str, List[int]] = "terminal"
    # (layer, 'key'|'value') -> gate logit; every other path gets +0.5 (open)
    gates: Dict[Tuple[int, str], float] = field(default_factory=dict)
    description: str = ""


CONFIGS = [
    Config("dims_differ", 101, (3, 2, 16), (3, 2, 8), 32, 48, [1, 7, 33],
           description="sharer dims differ from receiver dims (in 16, out 32), hidden != intermediate"),
    Config("gqa_explicit_map", 202, (2, 4, 8), (2, 2, 16), 32, 32, [3, 16], layer_map=[1, 0],
           description="GQA-like head counts (receiver 4x8, sharer 2x16), explicit non-terminal layer map"),
    Config("sharer_fewer_mlp4", 303, (4, 2, 8), (2, 1, 16), 32, 48, [2, 9], num_mlp_layers=4,
           description="sharer has fewer layers (terminal map clamps at 0), num_mlp_layers=4 (2 proj_mlp2 blocks), "
                       "hidden != intermediate"),
    Config("sharer_more_gates", 404, (3, 2, 8), (5, 2, 8), 32, 32, [4, 33],
           gates={(0, "key"): -0.5, (1, "value"): -0.5, (2, "value"): 0.0},
           description="sharer has more layers; closed gates: layer 0 K (-0.5), layer 1 V (-0.5), layer 2 V (0.0)"),
    Config("bf16_weights", 505, (2, 2, 16), (2, 4, 8), 32, 32, [5, 12], dtype="bfloat16",
           description="weights stored as bfloat16; expected outputs use the bf16-rounded weights"),
]


def realistic_kv(gen: torch.Generator, heads: int, seq: int, dim: int) -> torch.Tensor:
    """KV-like values: per-channel scales in [0.5, 3], a few outlier channels (x8), shape [heads, seq, dim]."""
    scale = 0.5 + 2.5 * torch.rand(heads, 1, dim, generator=gen)
    outliers = torch.rand(heads, 1, dim, generator=gen) < 0.06
    scale = torch.where(outliers, scale * 8.0, scale)
    bias = 0.3 * torch.randn(heads, 1, dim, generator=gen)
    return (torch.randn(heads, seq, dim, generator=gen) * scale + bias).to(torch.float32)


def build_projectors(cfg: Config) -> List[C2CProjector]:
    (rl, rh, rd), (_, sh, sd) = cfg.receiver, cfg.sharer
    projectors = []
    for layer in range(rl):
        p = C2CProjector(source_dim=sd, target_dim=rd, source_num_heads=sh, target_num_heads=rh,
                         hidden_dim=cfg.hidden, intermediate_dim=cfg.intermediate, num_layers=cfg.num_mlp_layers,
                         dropout=0.1)
        with torch.no_grad():
            for name, param in p.named_parameters():
                if name.endswith("norm.weight"):  # non-trivial RMSNorm gains so the weight is exercised
                    param.copy_(1.0 + 0.2 * torch.randn_like(param))
            p.key_gate_logit.fill_(cfg.gates.get((layer, "key"), 0.5))
            p.value_gate_logit.fill_(cfg.gates.get((layer, "value"), 0.5))
            if cfg.dtype == "bfloat16":
                for param in p.parameters():
                    param.copy_(torch.from_numpy(round_to_bf16(param.numpy())))
        p.eval()
        projectors.append(p)
    return projectors


def make_config(cfg: Config) -> Dict[str, object]:
    torch.manual_seed(cfg.seed)
    projectors = build_projectors(cfg)
    (rl, rh, rd), (sl, sh, sd) = cfg.receiver, cfg.sharer
    layer_map = terminal_layer_map(rl, sl) if cfg.layer_map == "terminal" else list(cfg.layer_map)
    out_dir = os.path.join(OUT_ROOT, cfg.name)
    metadata = {"generator": GENERATOR, "seed": cfg.seed, "description": cfg.description,
                "torch_version": torch.__version__, "resolved_layer_map": layer_map}
    save_fuser(out_dir, projectors, sl, layer_map=cfg.layer_map, dtype=cfg.dtype, metadata=metadata)

    gen = torch.Generator().manual_seed(cfg.seed + 1)
    tensors: Dict[str, Tuple[str, np.ndarray]] = {}
    doubles = [p.double() for p in projectors]
    for c, seq in enumerate(cfg.seqs):
        tensors[f"c{c}.seq"] = ("I32", np.array([seq], dtype=np.int32))
        sharer = [(realistic_kv(gen, sh, seq, sd), realistic_kv(gen, sh, seq, sd)) for _ in range(sl)]
        receiver = [(realistic_kv(gen, rh, seq, rd), realistic_kv(gen, rh, seq, rd)) for _ in range(rl)]
        for j, (k, v) in enumerate(sharer):
            tensors[f"c{c}.sharer.{j}.key"] = ("F32", k.numpy())
            tensors[f"c{c}.sharer.{j}.value"] = ("F32", v.numpy())
        for l, (k, v) in enumerate(receiver):
            tensors[f"c{c}.receiver.{l}.key"] = ("F32", k.numpy())
            tensors[f"c{c}.receiver.{l}.value"] = ("F32", v.numpy())
            sk, sv = sharer[layer_map[l]]
            with torch.no_grad():
                fk, fv = doubles[l]((sk.double()[None], sv.double()[None]), (k.double()[None], v.double()[None]))
            tensors[f"c{c}.fused.{l}.key"] = ("F32", fk[0].numpy().astype(np.float32))
            tensors[f"c{c}.fused.{l}.value"] = ("F32", fv[0].numpy().astype(np.float32))
    write_safetensors(os.path.join(out_dir, "cases.safetensors"), tensors,
                      metadata={"generator": GENERATOR, "seed": str(cfg.seed), "num_cases": str(len(cfg.seqs)),
                                "seqs": ",".join(map(str, cfg.seqs))})
    return {"name": cfg.name, "dir": out_dir, "layer_map": layer_map}


def main(argv: Optional[List[str]] = None) -> None:
    torch.set_num_threads(1)
    for cfg in CONFIGS:
        info = make_config(cfg)
        size = sum(os.path.getsize(os.path.join(info["dir"], f)) for f in os.listdir(info["dir"]))
        print(f"{cfg.name}: layer_map={info['layer_map']} seqs={cfg.seqs} dtype={cfg.dtype} {size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
