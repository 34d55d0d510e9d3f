"""Tiny Qwen3 decoder in plain PyTorch with HF `Qwen3ForCausalLM` parameter names.

RMSNorm, per-head q_norm/k_norm before rotate-half RoPE (from explicit position_ids), GQA, SwiGLU MLP,
tied embeddings. `forward` takes and returns a list of per-layer (key, value) caches in the HF/ONNX layout
`[batch, kv_heads, seq, head_dim]`, keys post-RoPE, so the same code serves training, the C2C fuser
(which edits those caches) and the ONNX export.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

KVList = List[Tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Qwen3Config:
    vocab_size: int = 512
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32
    intermediate_size: int = 384
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 512

    def hf_config(self, bos: int, eos: int, pad: int) -> dict:
        """config.json contents transformers.js (and HF) read for model_type qwen3."""
        d = asdict(self)
        d.update({
            "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "tie_word_embeddings": True,
            "hidden_act": "silu", "attention_bias": False, "attention_dropout": 0.0, "use_cache": True,
            "torch_dtype": "float32", "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad,
            "initializer_range": 0.02, "rope_scaling": None, "sliding_window": None, "use_sliding_window": False,
            "max_window_layers": self.num_hidden_layers,
        })
        return d

    @staticmethod
    def load(path) -> "Qwen3Config":
        d = json.loads(open(path).read())
        return Qwen3Config(**{k: d[k] for k in Qwen3Config.__dataclass_fields__})


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def repeat_kv(x: torch.Tensor, rep: int) -> torch.Tensor:
    """Query head h reads kv head h // rep (HF repeat_kv); expand+reshape exports cleanly to ONNX."""
    if rep == 1:
        return x
    b, h, t, d = x.shape
    return x[:, :, None].expand(b, h, rep, t, d).reshape(b, h * rep, t, d)


class Attention(nn.Module):
    def __init__(self, c: Qwen3Config):
        super().__init__()
        self.c = c
        self.q_proj = nn.Linear(c.hidden_size, c.num_attention_heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.num_attention_heads * c.head_dim, c.hidden_size, bias=False)
        self.q_norm = RMSNorm(c.head_dim, c.rms_norm_eps)
        self.k_norm = RMSNorm(c.head_dim, c.rms_norm_eps)

    def forward(self, x, cos, sin, mask, past: Optional[Tuple[torch.Tensor, torch.Tensor]]):
        c = self.c
        b, s, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, s, c.num_attention_heads, c.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(b, s, c.num_key_value_heads, c.head_dim)).transpose(1, 2)
        v = self.v_proj(x).view(b, s, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        rep = c.num_attention_heads // c.num_key_value_heads
        kk, vv = repeat_kv(k, rep), repeat_kv(v, rep)
        scores = torch.matmul(q, kk.transpose(2, 3)) * (c.head_dim ** -0.5)
        scores = torch.where(mask, scores, torch.full_like(scores, torch.finfo(scores.dtype).min))
        out = torch.matmul(torch.softmax(scores, dim=-1), vv)
        out = out.transpose(1, 2).reshape(b, s, c.num_attention_heads * c.head_dim)
        return self.o_proj(out), (k, v)


class MLP(nn.Module):
    def __init__(self, c: Qwen3Config):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c: Qwen3Config):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, x, cos, sin, mask, past):
        a, kv = self.self_attn(self.input_layernorm(x), cos, sin, mask, past)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), kv


class Qwen3Model(nn.Module):
    def __init__(self, c: Qwen3Config):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(c) for _ in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class Qwen3ForCausalLM(nn.Module):
    def __init__(self, c: Qwen3Config):
        super().__init__()
        self.config = c
        self.model = Qwen3Model(c)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.lm_head.weight = self.model.embed_tokens.weight  # tied
        inv = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.float32) / c.head_dim))
        self.register_buffer("inv_freq", inv, persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.Tensor] = None, past: Optional[KVList] = None,
                return_hidden: bool = False):
        """input_ids [b, s]; attention_mask [b, past+s] (1 = real token); position_ids [b, s].

        Returns (logits [b, s, vocab], present KV list). Padded query rows attend to nothing real; they are
        given a valid softmax (finite min instead of -inf) so left padding never makes NaNs.
        """
        b, s = input_ids.shape
        p = 0 if past is None else past[0][0].shape[2]
        if attention_mask is None:
            attention_mask = torch.ones(b, p + s, dtype=torch.long, device=input_ids.device)
        if position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, p:]
        freqs = position_ids.to(torch.float32).unsqueeze(-1) * self.inv_freq
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)
        qi = torch.arange(s, device=input_ids.device).unsqueeze(1) + p
        kj = torch.arange(p + s, device=input_ids.device).unsqueeze(0)
        causal = (kj <= qi).unsqueeze(0).unsqueeze(0)  # [1,1,s,p+s]
        mask = causal & attention_mask.bool().unsqueeze(1).unsqueeze(2)
        x = self.model.embed_tokens(input_ids)
        present: KVList = []
        for i, layer in enumerate(self.model.layers):
            x, kv = layer(x, cos, sin, mask, None if past is None else past[i])
            present.append(kv)
        h = self.model.norm(x)
        logits = self.lm_head(h)
        return (logits, present, h) if return_hidden else (logits, present)

    def state_dict_hf(self) -> dict:
        """State dict with HF names; lm_head.weight kept (tied) like HF's save."""
        return {k: v for k, v in self.state_dict().items()}
