"""Pipeline stage `lm`: train one tiny Qwen3 LM on a stream of (prompt, target) samples (loss on the target
tokens only, or on the whole text when the target is empty; AdamW, warmup + cosine decay, fixed seed), and
`stage_lm`: receiver and sharer trained, exported as transformers.js folders and checked in Node."""
from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Callable, List, Tuple

import torch
import torch.nn.functional as F

import export
import infer
import node_check
import world
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


def quick_accuracy(model, tok, ents, n: int, seed: int = 0) -> dict:
    """Greedy accuracy probe of one LM on n seeded items (logged during training)."""
    return world.probe_accuracy(tok, ents, n, seed, lambda ids: infer.greedy(model, ids, 6, world.eos_ids(tok)))


def sharer_hint_probe(model, tok, ents, n: int, seed: int = 0) -> float:
    """Share of seeded hint requests the sharer answers with exactly the canonical fact sentence."""
    return world.probe_hint(tok, ents, n, seed, lambda ids: infer.greedy(model, ids, 16, world.eos_ids(tok)))


def stage_lm(P: dict, out: Path, log, resume: bool = False) -> dict:
    ents, tok = world.build_world(P)
    own = world.split_entities(ents, "receiver")
    val = world.split_entities(ents, "validation")
    taken = {e.name for e in ents}
    info = {}
    for role in ("receiver", "sharer"):
        if resume and (out / role / "model.safetensors").exists() and (out / f"{role}_info.json").exists():
            info[role] = json.loads((out / f"{role}_info.json").read_text())
            log(f"[{role}] --resume: keeping {out / role}")
            continue
        R = P[role]
        cfg = Qwen3Config(vocab_size=tok.vocab_size, **R["cfg"])
        fn = (lambda r: world.sharer_sample(ents, r)) if role == "sharer" else (lambda r: world.receiver_sample(own, taken, r))
        probe = (lambda m: {"hint_exact_validation": sharer_hint_probe(m, tok, val, 40)}) if role == "sharer" else \
            (lambda m: {"own": quick_accuracy(m, tok, own, 40)})
        seed = P["seed"] + (10 if role == "sharer" else 20)
        model, inf = train_lm(cfg, tok, fn, R["steps"], R["batch"], R["lr"], seed, log=log, name=role,
                              eval_fn=probe, eval_every=1000)
        export.save_model_folder(model, tok, out / role, extra={"role": role, "train": inf})
        info[role] = inf
        (out / f"{role}_info.json").write_text(json.dumps(inf, indent=2))
        log(f"[{role}] saved {out / role} params={inf['params']} wall={inf['wall_s']}s")
    # transformers.js parity: tokenization, chat template, greedy (incl. batched left padding)
    rng = random.Random(P["seed"] + 5)
    cases = []
    for role in ("receiver", "sharer"):
        model, _ = export.load_model_folder(out / role)
        users = [world.make_item(e, a, k, rng)["prompt"] for e, a, k in
                 [(ents[0], "country", "mc"), (ents[-1], "workplace", "short"), (ents[len(ents) // 2], "country", "short")]]
        users.append(world.hint_request(world.ASKS["workplace"][1].format(n=ents[-2].name)))
        cases.append(node_check.build_case(out / role, role, model, tok, users))
    res = node_check.run_node_check(out, cases, log)
    log(f"[lm] transformers.js parity {res}")
    info["node_parity"] = res
    (out / "lm_info.json").write_text(json.dumps(info, indent=2))
    return info
