"""PyTorch C2CProjector written from the C2C math (Fu et al. 2025, see shared c2c-reference §1.3).

One projector per receiver layer, with independent K and V paths. Constructor kwargs and state-dict keys
match the official `rosetta` C2CProjector so official checkpoints load with `strict=True`:

    {key,value}_in, {key,value}_mlp1, {key,value}_scalar_mlp2, {key,value}_scalar_head,
    {key,value}_proj_mlp2, {key,value}_proj_out, {key,value}_gate_logit, buffer gate_temperature.

`source_dim` / `target_dim` are per-head dims; the flattened widths are heads * head_dim.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

KV = Tuple[torch.Tensor, torch.Tensor]


def terminal_layer_map(receiver_layers: int, sharer_layers: int) -> List[int]:
    """Terminal alignment: G(t) = clamp(t + (S - T), 0, S - 1) for each receiver layer t."""
    offset = sharer_layers - receiver_layers
    return [min(max(t + offset, 0), sharer_layers - 1) for t in range(receiver_layers)]


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight (torch 1.13 has no nn.RMSNorm)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class FFNBlock(nn.Module):
    """Pre-norm residual block: y = x + Dropout(W2 · GELU_erf(W1 · RMSNorm(x))), bias-free W1/W2."""

    def __init__(self, hidden_dim: int, intermediate_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm = RMSNorm(hidden_dim, eps=1e-6)
        self.w1 = nn.Linear(hidden_dim, intermediate_dim, bias=False)
        self.w2 = nn.Linear(intermediate_dim, hidden_dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # approximate='none' is the exact erf GELU of the official code.
        return x + self.dropout(self.w2(F.gelu(self.w1(self.norm(x)))))


class RegularMLP(nn.Module):
    """A stack of FFN blocks (`blocks.{i}`); the official docstring says SwiGLU but the math is GELU."""

    def __init__(self, hidden_dim: int, intermediate_dim: int, num_blocks: int, dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList([FFNBlock(hidden_dim, intermediate_dim, dropout) for _ in range(num_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class C2CProjector(nn.Module):
    """Fuses one sharer layer's KV into one receiver layer's KV: out = r + gate · w[head] · proj(concat(s, r))."""

    def __init__(
        self,
        source_dim: int,
        target_dim: int,
        source_num_heads: int = 1,
        target_num_heads: int = 1,
        hidden_dim: int = 1024,
        intermediate_dim: int = 1024,
        num_layers: int = 3,
        dropout: float = 0.1,
        initial_temperature: float = 1.0,
        final_temperature: float = 0.001,
        anneal_steps: int = 1929,
        dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"num_layers must be >= 2 (got {num_layers})")
        self.source_dim = source_dim
        self.target_dim = target_dim
        self.source_num_heads = source_num_heads
        self.target_num_heads = target_num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_layers = num_layers
        self.initial_temperature = initial_temperature
        self.final_temperature = final_temperature
        self.anneal_steps = anneal_steps
        self.scalar_temperature = 1.0

        in_dim = source_num_heads * source_dim
        out_dim = target_num_heads * target_dim
        self.in_dim, self.out_dim = in_dim, out_dim
        for p in ("key", "value"):
            setattr(self, f"{p}_in", nn.Linear(in_dim + out_dim, hidden_dim))
            setattr(self, f"{p}_mlp1", RegularMLP(hidden_dim, intermediate_dim, 1, dropout))
            setattr(self, f"{p}_scalar_mlp2", RegularMLP(hidden_dim, intermediate_dim, 1, dropout))
            setattr(self, f"{p}_scalar_head", nn.Linear(hidden_dim, target_num_heads))
            setattr(self, f"{p}_proj_mlp2", RegularMLP(hidden_dim, intermediate_dim, num_layers - 2, dropout))
            setattr(self, f"{p}_proj_out", nn.Linear(hidden_dim, out_dim))
        self.key_gate_logit = nn.Parameter(torch.tensor(0.0))
        self.value_gate_logit = nn.Parameter(torch.tensor(0.0))
        self.register_buffer("gate_temperature", torch.tensor(float(initial_temperature)))
        if dtype is not None:
            self.to(dtype)

    def update_temperature(self, step: int) -> float:
        """Geometric anneal T0 · (T1/T0)^min(step/anneal_steps, 1) (the paper says linear; the code is geometric)."""
        frac = min(step / max(self.anneal_steps, 1), 1.0)
        tau = self.initial_temperature * (self.final_temperature / self.initial_temperature) ** frac
        self.gate_temperature.fill_(tau)
        return tau

    def _gate(self, logit: torch.Tensor, b: int, n: int, like: torch.Tensor) -> torch.Tensor:
        if self.training:
            # Gumbel-sigmoid, one sample per (batch, receiver head, token).
            u = torch.rand(b, self.target_num_heads, n, 1, device=like.device, dtype=like.dtype)
            g = -torch.log(-torch.log(u + 1e-20) + 1e-20)
            return torch.sigmoid((logit + g) / self.gate_temperature)
        return (logit > 0).to(like.dtype)

    def _path(self, p: str, s: torch.Tensor, r: torch.Tensor, logit: torch.Tensor) -> torch.Tensor:
        b, ht, n, dt = r.shape
        s_flat = s.transpose(1, 2).reshape(b, n, -1)  # head-major flattening per token
        r_flat = r.transpose(1, 2).reshape(b, n, -1)
        h0 = getattr(self, f"{p}_in")(torch.cat([s_flat, r_flat], dim=-1))  # sharer first
        h1 = getattr(self, f"{p}_mlp1")(h0)
        proj = getattr(self, f"{p}_proj_out")(getattr(self, f"{p}_proj_mlp2")(h1))
        z = getattr(self, f"{p}_scalar_head")(getattr(self, f"{p}_scalar_mlp2")(h1))
        w = torch.sigmoid(z / self.scalar_temperature)  # (b, n, ht)
        proj = proj.view(b, n, ht, dt).transpose(1, 2)  # (b, ht, n, dt)
        w = w.transpose(1, 2).unsqueeze(-1)  # (b, ht, n, 1)
        gate = self._gate(logit, b, n, r)
        return r + gate * w * proj

    def forward(self, source_kv: KV, target_kv: KV) -> KV:
        """source_kv: sharer (key, value) `(B, Hs, N, Ds)`; target_kv: receiver `(B, Ht, N, Dt)`; returns fused."""
        sk, sv = source_kv
        tk, tv = target_kv
        for name, t, h, d in (("source key", sk, self.source_num_heads, self.source_dim),
                              ("source value", sv, self.source_num_heads, self.source_dim),
                              ("target key", tk, self.target_num_heads, self.target_dim),
                              ("target value", tv, self.target_num_heads, self.target_dim)):
            if t.dim() != 4 or t.shape[1] != h or t.shape[3] != d:
                raise ValueError(f"{name} must be (B, {h}, N, {d}), got {tuple(t.shape)}")
        if sk.shape[2] != tk.shape[2] or sv.shape[2] != tv.shape[2]:
            raise ValueError(f"sharer and receiver token counts differ: {sk.shape[2]} vs {tk.shape[2]}")
        return (self._path("key", sk, tk, self.key_gate_logit),
                self._path("value", sv, tv, self.value_gate_logit))


def official_state_dict_keys(num_layers: int = 3) -> List[str]:
    """The state-dict keys of the official C2CProjector for a given `num_layers` (for checks)."""
    keys: List[str] = []
    for p in ("key", "value"):
        keys += [f"{p}_in.weight", f"{p}_in.bias"]
        for mlp, blocks in (("mlp1", 1), ("scalar_mlp2", 1), ("proj_mlp2", num_layers - 2)):
            for i in range(blocks):
                keys += [f"{p}_{mlp}.blocks.{i}.{k}" for k in ("norm.weight", "w1.weight", "w2.weight")]
        keys += [f"{p}_scalar_head.weight", f"{p}_scalar_head.bias", f"{p}_proj_out.weight", f"{p}_proj_out.bias",
                 f"{p}_gate_logit"]
    return keys + ["gate_temperature"]


__all__ = ["C2CProjector", "RMSNorm", "FFNBlock", "RegularMLP", "terminal_layer_map", "official_state_dict_keys"]
