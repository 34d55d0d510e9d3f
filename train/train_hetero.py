"""Pipeline stage `fuser` (hetero variant): a sharer with its own tokenizer (different merges/vocab) and a fuser trained through
token alignment (train/align.py, c2c-reference §3): receiver tokens are the base, one sharer token per receiver
token, template sections padded, shared position ids 0..L-1, only message tokens fused.

Outputs <out>/sharer_b/ (transformers.js folder), <out>/fuser_b/ (fuser format, alignment enabled),
hetero_info.json and eval numbers for C2C / sharer-b alone / text relay through sharer-b on the validation and test entities.
"""
from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path
from typing import List

import torch
import torch.nn.functional as F

import export
import infer
import train_lm
import world
from align import align_chat
from bpe import BPETokenizer
from c2c.fuser_io import save_fuser
from c2c.projector import terminal_layer_map
from qwen3 import Qwen3Config
from train_fuser import fuser_optimizer_step, make_projectors
from world import decode_answer, eos_ids, eval_items, tally


def sharer_b_tokenizer(P: dict, ents) -> BPETokenizer:
    return BPETokenizer.train(world.tokenizer_corpus(ents, P["seed"] + 77), P["hetero"]["vocab_size"])


def prep(recv_tok, shar_tok, user: str, strategy: str) -> dict:
    a = align_chat(recv_tok, shar_tok, user, strategy)
    if a["receiver_mask"][-1] != 1:
        raise ValueError("last prompt token is padding: template tokenizations differ in the final section")
    return a


def fuse_aligned(projectors, layer_map, rkv, skv, msg: torch.Tensor, kv_noise: float = 0.0):
    """Fuse only where msg (b, n) is 1; elsewhere keep the receiver's values. kv_noise > 0 (training): relative
    Gaussian noise on the fuser inputs, the clean receiver cache kept as the residual base (as train_fuser.py)."""
    out = []
    m = msg[:, None, :, None].to(torch.float32)

    def noisy(t):
        return t + kv_noise * t.std() * torch.randn_like(t) if kv_noise > 0 else t
    for l in range(len(rkv)):
        rk, rv = rkv[l]
        nk, nv = noisy(rk), noisy(rv)
        sk, sv = skv[layer_map[l]]
        fk, fv = projectors[l]((noisy(sk), noisy(sv)), (nk, nv))
        fk, fv = rk + fk - nk, rv + fv - nv
        out.append((m * fk + (1 - m) * rk, m * fv + (1 - m) * rv))
    return out


def hetero_batch_loss(receiver, sharer, projectors, layer_map, batch, kv_noise: float = 0.0):
    """batch: list of (aligned dict, answer ids in receiver tokens). Heads left-padded across the batch."""
    B = len(batch)
    heads = [a for a, _ in batch]
    H = max(len(a["receiver_ids"]) - 1 for a in heads)
    T = max(1 + len(ans) for _, ans in batch)
    rid = torch.zeros(B, H, dtype=torch.long)
    sid = torch.zeros(B, H, dtype=torch.long)
    rmask = torch.zeros(B, H, dtype=torch.long)
    smask = torch.zeros(B, H, dtype=torch.long)
    msg = torch.zeros(B, H, dtype=torch.long)
    pos = torch.zeros(B, H, dtype=torch.long)
    tid = torch.zeros(B, T, dtype=torch.long)
    tmask = torch.zeros(B, T, dtype=torch.long)
    tpos = torch.zeros(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    for i, (a, ans) in enumerate(batch):
        n = len(a["receiver_ids"]) - 1
        sl = slice(H - n, H)
        rid[i, sl] = torch.tensor(a["receiver_ids"][:-1])
        sid[i, sl] = torch.tensor(a["sharer_ids"][:-1])
        rmask[i, sl] = torch.tensor(a["receiver_mask"][:-1])
        smask[i, sl] = torch.tensor(a["sharer_mask"][:-1])
        msg[i, sl] = torch.tensor(a["message_mask"][:-1])
        pos[i, sl] = torch.arange(n)
        t = [a["receiver_ids"][-1]] + ans
        tid[i, : len(t)] = torch.tensor(t)
        tmask[i, : len(t)] = 1
        labels[i, : len(t) - 1] = torch.tensor(t[1:])
        tpos[i] = torch.arange(n, n + T)
    with torch.no_grad():
        _, rkv = receiver(rid, rmask, pos)
        _, skv = sharer(sid, smask, pos)
    fused = fuse_aligned(projectors, layer_map, rkv, skv, msg, kv_noise)
    logits, _ = receiver(tid, torch.cat([rmask, tmask], 1), tpos, fused)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


@torch.no_grad()
def hetero_c2c_greedy(receiver, sharer, projectors, layer_map, a: dict, max_new: int, eos) -> List[int]:
    n = len(a["receiver_ids"]) - 1
    pos = torch.arange(n).unsqueeze(0)
    rm = torch.tensor([a["receiver_mask"][:-1]])
    _, rkv = receiver(torch.tensor([a["receiver_ids"][:-1]]), rm, pos)
    _, skv = sharer(torch.tensor([a["sharer_ids"][:-1]]), torch.tensor([a["sharer_mask"][:-1]]), pos)
    fused = fuse_aligned(projectors, layer_map, rkv, skv, torch.tensor([a["message_mask"][:-1]]))
    # decode with the receiver's padding mask kept for the head (pads never attended)
    out, ids, p, past = [], [a["receiver_ids"][-1]], n, fused
    mask = rm
    for _ in range(max_new):
        mask = torch.cat([mask, torch.ones(1, 1, dtype=torch.long)], 1)
        logits, past = receiver(torch.tensor([ids]), mask, torch.tensor([[p]]), past)
        nxt = int(logits[0, -1].argmax())
        out.append(nxt)
        if nxt in eos:
            break
        ids, p = [nxt], p + 1
    return out


def hetero_eval(P, items, receiver, sharer, projectors, layer_map, rtok, tokb, strategy, cases) -> dict:
    eos_r, eos_s = eos_ids(rtok), eos_ids(tokb)
    hits = {m: {"mc": [0, 0], "short": [0, 0]} for m in ("c2c", "sharer_b", "text_relay_b")}
    for i, it in enumerate(items):
        a = prep(rtok, tokb, it["prompt"], strategy)
        c2c = hetero_c2c_greedy(receiver, sharer, projectors, layer_map, a, P["max_new_tokens"], eos_r)
        sb = infer.greedy(sharer, tokb.encode(world.chat(it["prompt"])), P["max_new_tokens"], eos_s)
        hint_ids = infer.greedy(sharer, tokb.encode(world.chat(world.hint_request(it["question"]))), P["hint_max_tokens"], eos_s)
        hint = decode_answer(tokb, hint_ids)
        tr = infer.greedy(receiver, rtok.encode(world.chat(world.with_hint(it["prompt"], hint))), P["max_new_tokens"], eos_r)
        for m, ids, tk in (("c2c", c2c, rtok), ("sharer_b", sb, tokb), ("text_relay_b", tr, rtok)):
            hits[m][it["type"]][0] += int(decode_answer(tk, ids) == it["answer"])
            hits[m][it["type"]][1] += 1
        if cases is not None and len(cases) < 4 and (i % 7 == 0):
            cases.append({"id": it["id"], "type": it["type"], "user": it["prompt"], "answer": it["answer"],
                          "aligned": {k: v for k, v in a.items()}, "c2c_output_ids": c2c,
                          "c2c_text": decode_answer(rtok, c2c)})
    return {m: tally(h, len(items)) for m, h in hits.items()}


def c2c_probe(P, items, receiver, sharer, projectors, layer_map, rtok, tokb, strategy) -> float:
    """C2C accuracy through the alignment on `items`, mean of MC and short answer (the checkpoint choice)."""
    for pr in projectors:
        pr.eval()
    eos_r = eos_ids(rtok)
    hits = {"mc": [0, 0], "short": [0, 0]}
    for it in items:
        ids = hetero_c2c_greedy(receiver, sharer, projectors, layer_map, prep(rtok, tokb, it["prompt"], strategy),
                                P["max_new_tokens"], eos_r)
        hits[it["type"]][0] += int(decode_answer(rtok, ids) == it["answer"])
        hits[it["type"]][1] += 1
    return sum(h / max(n, 1) for h, n in hits.values()) / 2


def train_sharer_b(P: dict, out: Path, log, ents, resume: bool):
    """Trains sharer_b (or, with --resume, keeps an already trained sharer_b/ and its recorded training info)."""
    H = P["hetero"]
    info_file = out / "hetero_info.json"
    if resume and (out / "sharer_b" / "model.safetensors").exists() and info_file.exists():
        log(f"[sharer_b] --resume: keeping {out / 'sharer_b'}")
        sharer, tokb = export.load_model_folder(out / "sharer_b")
        return sharer, tokb, json.loads(info_file.read_text())["sharer_b"]
    tokb = sharer_b_tokenizer(P, ents)
    cfg = Qwen3Config(vocab_size=tokb.vocab_size, **H["cfg"])
    val = world.split_entities(ents, "validation")
    sharer, sinfo = train_lm.train_lm(cfg, tokb, lambda r: world.sharer_sample(ents, r), H["steps"], H["batch"], H["lr"],
                                      P["seed"] + 40, log=log, name="sharer_b",
                                      eval_fn=lambda m: train_lm.sharer_hint_probe(m, tokb, val, 40), eval_every=1000)
    export.save_model_folder(sharer, tokb, out / "sharer_b", extra={"role": "sharer_b", "train": sinfo})
    return sharer, tokb, {k: v for k, v in sinfo.items() if k != "loss_history"}


def stage_hetero(P: dict, out: Path, log, smoke: bool, resume: bool = False) -> dict:
    H = P["hetero"]
    ents, _ = world.build_world(P)
    receiver, rtok = export.load_model_folder(out / "receiver")
    sharer, tokb, sinfo = train_sharer_b(P, out, log, ents, resume)
    for p in list(receiver.parameters()) + list(sharer.parameters()):
        p.requires_grad_(False)
    strategy = H["strategy"]
    e2 = world.split_entities(ents, "fuser")
    types = list(P["fuser"].get("types", ("mc", "short")))
    rc, sc = receiver.config, sharer.config
    layer_map = terminal_layer_map(rc.num_hidden_layers, sc.num_hidden_layers)
    steps, bs = H["fuser_steps"], P["fuser"]["batch"]
    # The checkpoint is chosen on validation, as for the main fuser (train_fuser.stage_fuser).
    every, val_probe = P["fuser"].get("val_every", 500), eval_items(P, ents, "validation")[: P["fuser"].get("val_items", 80)]
    torch.manual_seed(P["seed"] + 50)
    rng = random.Random(P["seed"] + 50)
    projectors = make_projectors(rc, sc, P["fuser"], steps)
    params = [p for pr in projectors for p in pr.parameters()]
    opt = torch.optim.AdamW(params, lr=P["fuser"]["lr"], weight_decay=P["fuser"].get("weight_decay", 0.01))
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(steps - warm, 1))))
    t0, ema, best, val_hist = time.time(), None, (-1.0, 0, None), []
    for step in range(1, steps + 1):
        for pr in projectors:
            pr.train()
        batch = []
        for _ in range(bs):
            it = world.make_item(rng.choice(e2), rng.choice(list(world.ASKS)), rng.choice(types), rng)
            batch.append((prep(rtok, tokb, it["prompt"], strategy), rtok.encode(it["answer"] + "<|im_end|>")))
        loss = hetero_batch_loss(receiver, sharer, projectors, layer_map, batch, P["fuser"].get("kv_noise", 0.0))
        fuser_optimizer_step(loss, params, opt, sched, projectors, step)
        ema = loss.item() if ema is None else 0.97 * ema + 0.03 * loss.item()
        if step % 50 == 0 or step == steps:
            log(f"[hetero] step {step}/{steps} loss {ema:.4f} {time.time() - t0:.0f}s")
        if step % every == 0 or step == steps:
            acc = c2c_probe(P, val_probe, receiver, sharer, projectors, layer_map, rtok, tokb, strategy)
            val_hist.append((step, round(acc, 4)))
            log(f"[hetero] step {step} C2C validation probe {acc:.3f}")
            if acc > best[0]:
                best = (acc, step, [copy.deepcopy(pr.state_dict()) for pr in projectors])
    for pr, sd in zip(projectors, best[2]):
        pr.load_state_dict(sd)
    log(f"[hetero] keeping the step-{best[1]} checkpoint (validation probe {best[0]:.3f})")
    for pr in projectors:
        pr.eval()
    fwall = round(time.time() - t0, 1)
    gates = [{"key": float(pr.key_gate_logit), "value": float(pr.value_gate_logit)} for pr in projectors]
    man = save_fuser(str(out / "fuser_b"), projectors, sc.num_hidden_layers, layer_map="terminal",
                     metadata={"trained_by": "train/train_hetero.py", "steps": steps, "chosen_step": best[1],
                               "gate_logits": gates})
    man["alignment"] = {"enabled": True, "strategy": strategy}
    (out / "fuser_b" / "fuser.json").write_text(json.dumps(man, indent=2) + "\n")
    # eval on validation and test: C2C through alignment, sharer-b alone, text relay via sharer-b
    summary, cases = {}, []
    for split in ("validation", "test"):
        items = eval_items(P, ents, split)[: 24 if smoke else None]
        summary[split] = hetero_eval(P, items, receiver, sharer, projectors, layer_map, rtok, tokb, strategy,
                                     cases if split == "test" else None)
    info = {"sharer_b": sinfo, "fuser_b_wall_s": fwall, "fuser_b_steps": steps, "fuser_b_chosen_step": best[1],
            "fuser_b_validation_history": val_hist, "fuser_b_final_loss": round(ema, 4), "gate_logits": gates,
            "strategy": strategy, "vocab_size": tokb.vocab_size, "eval": summary}
    (out / "hetero_info.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / "golden" ).mkdir(exist_ok=True)
    (out / "golden" / "hetero.json").write_text(json.dumps({"strategy": strategy, "layer_map": layer_map,
                                                             "cases": cases}, indent=1) + "\n")
    log(f"[hetero] {json.dumps(summary)}")
    return info
