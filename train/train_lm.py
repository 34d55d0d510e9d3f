"""Train one tiny Qwen3 LM on a stream of (prompt, target) samples: loss on the target tokens only
(or on the whole text when the target is empty), AdamW, warmup + cosine decay, fixed seed."""
from __future__ import annotations

import math
import random
import time
from typing import Callable, List, Tuple

import torch
import torch.nn.functional as F

from bpe import BPETokenizer
from qwen3 import Qwen3Config, Qwen3ForCausalLM


def encode_sample(tok: BPETokenizer, prompt: str, target: str) -> Tuple[List[int], List[int]]:
    p = tok.encode(prompt)
    if not target:
        return p, [0] + [1] * (len(p) - 1)
    t = tok.encode(target)
    return p + t, [0] * len(p) + [1] * len(t)


def make_batch(tok, sample_fn: Callable[[random.Random], tuple], rng: random.Random, bs: int):
    seqs = [encode_sample(tok, *sample_fn(rng)) for _ in range(bs)]
    L = max(len(s[0]) for s in seqs)
    ids = torch.zeros(bs, L, dtype=torch.long)
    lm = torch.zeros(bs, L)
    for i, (s, m) in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        lm[i, : len(m)] = torch.tensor(m, dtype=torch.float32)
    return ids, lm


def lm_loss(model, ids, lm):
    # right padding + causal mask: real tokens never see padding, so no attention mask is needed
    logits, _ = model(ids)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    w = lm[:, 1:].reshape(-1)
    return (loss * w).sum() / w.sum().clamp(min=1)


def train_lm(cfg: Qwen3Config, tok: BPETokenizer, sample_fn, steps: int, bs: int, lr: float, seed: int,
             log=print, name: str = "lm", eval_fn=None, eval_every: int = 0) -> Tuple[Qwen3ForCausalLM, dict]:
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = Qwen3ForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0)))))
    t0 = time.time()
    ema = None
    hist = []
    for step in range(1, steps + 1):
        model.train()
        ids, lm = make_batch(tok, sample_fn, rng, bs)
        loss = lm_loss(model, ids, lm)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 100 == 0 or step == steps:
            log(f"[{name}] step {step}/{steps} loss {ema:.4f} {time.time() - t0:.0f}s")
            hist.append((step, round(ema, 4)))
        if eval_fn and eval_every and step % eval_every == 0 and step < steps:
            model.eval()
            log(f"[{name}] step {step} eval {eval_fn(model)}")
    model.eval()
    return model, {"steps": steps, "batch_size": bs, "lr": lr, "seed": seed, "final_loss": round(ema, 4),
                   "wall_s": round(time.time() - t0, 1), "loss_history": hist,
                   "params": sum(p.numel() for p in model.parameters())}
