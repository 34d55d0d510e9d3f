"""PyTorch C2CProjector with the module structure of upstream's (thu-nics/C2C `rosetta/model/projector.py`),
written from the C2C math (shared c2c-reference §1.2-1.3), not copied.

Same class names, constructor kwargs, attribute names, nesting and construction order as upstream, so an
official `projector_{i}.pt` loads with `strict=True` and a state dict written here has upstream's keys, shapes
and key order:

    key_in, value_in                        Linear(in_dim + out_dim → hidden), bias
    key_mlp1, value_mlp1                    RegularMLP(hidden, intermediate_dim, 1 block)
    key_scalar_mlp2, value_scalar_mlp2      RegularMLP(hidden, intermediate = hidden_dim, 1 block)
    key_scalar_head, value_scalar_head      Linear(hidden → target_num_heads), bias
    key_proj_mlp2, value_proj_mlp2          RegularMLP(hidden, intermediate_dim, num_layers − 2 blocks)
    key_proj_out, value_proj_out            Linear(hidden → out_dim), bias
    key_gate_logit, value_gate_logit        0-d parameters (init 0.0); buffer gate_temperature (0-d)

Each RegularMLP is `blocks.{i}` of StandardFFNLayer (`norm` RMSNorm eps 1e-6 with weight, bias-free `w1`/`w2`,
exact-erf GELU). `source_dim` / `target_dim` are per-head dims; the flattened widths are heads × head_dim.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn as nn

KV = Tuple[torch.Tensor, torch.Tensor]

#: Upstream asserts num_layers >= 3: proj_mlp2 is a RegularMLP of num_layers - 2 blocks, and RegularMLP needs >= 1.
MIN_NUM_LAYERS = 3


def terminal_layer_map(receiver_layers: int, sharer_layers: int) -> List[int]:
    """Terminal alignment: G(t) = clamp(t + (S - T), 0, S - 1) for each receiver layer t."""
    offset = sharer_layers - receiver_layers
    return [min(max(t + offset, 0), sharer_layers - 1) for t in range(receiver_layers)]


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, state key `weight` as nn.RMSNorm (which torch 1.13 lacks)."""

    def __init__(self, normalized_shape: int, eps: float = 1e-6, dtype: Optional[torch.dtype] = None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(normalized_shape, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class StandardFFNLayer(nn.Module):
    """Pre-norm residual block: y = x + Dropout(w2(act(w1(norm(x))))), bias-free w1/w2."""

    def __init__(self, hidden_size: int, intermediate_size: int, dropout: float = 0.0,
                 dtype: torch.dtype = torch.float32, activation: str = "gelu"):
        super().__init__()
        self.norm = RMSNorm(hidden_size, eps=1e-6, dtype=dtype)
        self.w1 = nn.Linear(hidden_size, intermediate_size, bias=False, dtype=dtype)
        self.w2 = nn.Linear(intermediate_size, hidden_size, bias=False, dtype=dtype)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        acts = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}  # nn.GELU() default: the exact erf form
        if activation.lower() not in acts:
            raise ValueError(f"unsupported activation {activation!r} (one of {sorted(acts)})")
        self.act = acts[activation.lower()]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.w2(self.act(self.w1(self.norm(x)))))


class RegularMLP(nn.Module):
    """`num_layers` StandardFFNLayers at a fixed hidden size (`blocks.{i}`); upstream's docstring says SwiGLU,
    its code (and so this) is GELU."""

    def __init__(self, hidden_dim: int = 1024, intermediate_dim: int = 3072, num_layers: int = 3,
                 dropout: float = 0.1, dtype: torch.dtype = torch.float32):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"RegularMLP num_layers must be >= 1 (got {num_layers})")
        self.blocks = nn.ModuleList([
            StandardFFNLayer(hidden_size=hidden_dim, intermediate_size=intermediate_dim, dropout=dropout, dtype=dtype)
            for _ in range(num_layers)])

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
        intermediate_dim: int = 1024,
        hidden_dim: int = 1024,
        num_layers: int = 3,
        dropout: float = 0.1,
        initial_temperature: float = 1.0,
        final_temperature: float = 0.001,
        anneal_steps: int = 1929,
        dtype: torch.dtype = torch.float32,
        zero_init: bool = False,
    ):
        super().__init__()
        if num_layers < MIN_NUM_LAYERS:
            # Upstream asserts the same; a ValueError also survives `python -O`.
            raise ValueError(f"num_layers must be >= {MIN_NUM_LAYERS} (got {num_layers}): "
                             f"proj_mlp2 has num_layers - 2 FFN blocks")
        self.source_dim = source_dim
        self.target_dim = target_dim
        self.source_num_heads = source_num_heads
        self.target_num_heads = target_num_heads
        # Kept for writers (fuser_io); upstream does not store these three.
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_layers = num_layers

        in_dim = source_dim * source_num_heads
        out_dim = target_dim * target_num_heads
        self.in_dim, self.out_dim = in_dim, out_dim
        mlp = dict(hidden_dim=hidden_dim, dropout=dropout, dtype=dtype)

        # Construction order is upstream's: it fixes the state-dict key order.
        self.key_in = nn.Linear(in_dim + out_dim, hidden_dim, bias=True, dtype=dtype)
        self.value_in = nn.Linear(in_dim + out_dim, hidden_dim, bias=True, dtype=dtype)
        self.key_mlp1 = RegularMLP(intermediate_dim=intermediate_dim, num_layers=1, **mlp)
        self.value_mlp1 = RegularMLP(intermediate_dim=intermediate_dim, num_layers=1, **mlp)
        # The scalar branch's FFN inner width is hidden_dim, not intermediate_dim (upstream builds it so).
        self.key_scalar_mlp2 = RegularMLP(intermediate_dim=hidden_dim, num_layers=1, **mlp)
        self.value_scalar_mlp2 = RegularMLP(intermediate_dim=hidden_dim, num_layers=1, **mlp)
        self.key_scalar_head = nn.Linear(hidden_dim, target_num_heads, dtype=dtype)
        self.value_scalar_head = nn.Linear(hidden_dim, target_num_heads, dtype=dtype)
        self.key_proj_mlp2 = RegularMLP(intermediate_dim=intermediate_dim, num_layers=num_layers - 2, **mlp)
        self.value_proj_mlp2 = RegularMLP(intermediate_dim=intermediate_dim, num_layers=num_layers - 2, **mlp)
        self.key_proj_out = nn.Linear(hidden_dim, out_dim, bias=True, dtype=dtype)
        self.value_proj_out = nn.Linear(hidden_dim, out_dim, bias=True, dtype=dtype)
        if zero_init:  # the projection starts at 0, so the fused cache starts as the receiver's own
            for lin in (self.key_proj_out, self.value_proj_out):
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)

        self.key_gate_logit = nn.Parameter(torch.tensor(0.0, dtype=dtype))
        self.value_gate_logit = nn.Parameter(torch.tensor(0.0, dtype=dtype))
        self.use_gumbel = True
        self.register_buffer("gate_temperature", torch.tensor(initial_temperature, dtype=dtype))
        self.initial_temperature = initial_temperature
        self.final_temperature = final_temperature
        self.anneal_steps = anneal_steps
        self.scalar_temperature = 1.0

    def update_temperature(self, step: int) -> float:
        """Geometric anneal T0 · (T1/T0)^min(step/anneal_steps, 1) (the paper says linear; the code is geometric)."""
        frac = min(step / max(self.anneal_steps, 1), 1.0)
        tau = self.initial_temperature * (self.final_temperature / self.initial_temperature) ** frac
        self.gate_temperature.fill_(tau)
        return tau

    def _gate(self, logit: torch.Tensor, b: int, n: int, like: torch.Tensor) -> torch.Tensor:
        if self.training and self.use_gumbel:
            # Gumbel-sigmoid, one sample per (batch, receiver head, token).
            u = torch.rand(b, self.target_num_heads, n, 1, device=like.device, dtype=like.dtype)
            g = -torch.log(-torch.log(u + 1e-20) + 1e-20)
            return torch.sigmoid((logit + g) / self.gate_temperature)
        return (logit > 0).to(like.dtype)

    def _path(self, p: str, s: torch.Tensor, r: torch.Tensor, logit: torch.Tensor) -> torch.Tensor:
        b, ht, n, dt = r.shape
        s_flat = s.transpose(1, 2).reshape(b, n, -1)  # head-major flattening per token
        r_flat = r.transpose(1, 2).reshape(b, n, -1)
        h1 = getattr(self, f"{p}_mlp1")(getattr(self, f"{p}_in")(torch.cat([s_flat, r_flat], dim=-1)))  # sharer first
        proj = getattr(self, f"{p}_proj_out")(getattr(self, f"{p}_proj_mlp2")(h1))
        z = getattr(self, f"{p}_scalar_head")(getattr(self, f"{p}_scalar_mlp2")(h1))
        w = torch.sigmoid(z / self.scalar_temperature)  # (b, n, ht)
        proj = proj.view(b, n, ht, dt).transpose(1, 2)  # (b, ht, n, dt)
        w = w.transpose(1, 2).unsqueeze(-1)  # (b, ht, n, 1)
        return r + self._gate(logit, b, n, r) * w * proj

    def forward(self, source_kv: KV, target_kv: KV, position_ids: Optional[torch.Tensor] = None,
                max_pos: Optional[torch.Tensor] = None) -> KV:
        """source_kv: sharer (key, value) `(B, Hs, N, Ds)`; target_kv: receiver `(B, Ht, N, Dt)`; returns fused.
        position_ids / max_pos are accepted as upstream's signature does, and unused there too."""
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


__all__ = ["C2CProjector", "RMSNorm", "StandardFFNLayer", "RegularMLP", "terminal_layer_map", "MIN_NUM_LAYERS"]
