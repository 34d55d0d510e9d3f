"""Pipeline stage `fuser`: train the C2C fuser (one C2CProjector per receiver layer) with both LLMs frozen, exactly the
c2c-reference §4.2/§6 flow: receiver and sharer prefill over prompt[:-1] (same ids, same positions), every
receiver layer fused with its terminal-mapped sharer layer on those tokens, then the receiver runs the last
prompt token + answer on the fused cache; next-token loss on the answer only. Gumbel-sigmoid gates with a
geometric temperature 1 -> 0.001 (update_temperature after every optimizer step); hard gates at export."""
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
import world
from c2c.fuser_io import load_fuser, save_fuser
from c2c.projector import C2CProjector, terminal_layer_map


def load_projectors(folder: Path):
    f = load_fuser(str(folder))
    return f["projectors"], f["layer_map"]


def make_projectors(rc, sc, F_: dict, steps: int) -> List[C2CProjector]:  # noqa: N803
    return [C2CProjector(source_dim=sc.head_dim, target_dim=rc.head_dim, source_num_heads=sc.num_key_value_heads,
                         target_num_heads=rc.num_key_value_heads, hidden_dim=F_["hidden_dim"],
                         intermediate_dim=F_["intermediate_dim"], num_layers=F_["num_layers"], dropout=F_.get("dropout", 0.1),
                         initial_temperature=1.0, final_temperature=0.001, anneal_steps=steps)
            for _ in range(rc.num_hidden_layers)]


def fused_batch_loss(receiver, sharer, projectors, layer_map, batch, kv_noise: float = 0.0):
    """batch: list of (prompt_ids, answer_ids). Heads (prompt[:-1]) left-padded, tails right-padded."""
    heads = [p[:-1] for p, _ in batch]
    tails = [[p[-1]] + a for p, a in batch]
    B, H, T = len(batch), max(len(h) for h in heads), max(len(t) for t in tails)
    hid = torch.zeros(B, H, dtype=torch.long)
    hmask = torch.zeros(B, H, dtype=torch.long)
    tid = torch.zeros(B, T, dtype=torch.long)
    tmask = torch.zeros(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    tpos = torch.zeros(B, T, dtype=torch.long)
    for i, (h, t) in enumerate(zip(heads, tails)):
        hid[i, H - len(h):] = torch.tensor(h)
        hmask[i, H - len(h):] = 1
        tid[i, : len(t)] = torch.tensor(t)
        tmask[i, : len(t)] = 1
        labels[i, : len(t) - 1] = torch.tensor(t[1:])
        tpos[i] = torch.arange(len(h), len(h) + T)
    hpos = (hmask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        _, rkv = receiver(hid, hmask, hpos)
        _, skv = sharer(hid, hmask, hpos)
    if kv_noise <= 0:
        fused = [projectors[l]((skv[layer_map[l]][0], skv[layer_map[l]][1]), rkv[l]) for l in range(len(rkv))]
    else:
        # relative Gaussian noise on the fuser INPUTS only (discourages memorising entity fingerprints); the
        # residual base stays the clean receiver cache: fused = r + (proj(s~, r~) - r~)
        def noisy(t):
            return t + kv_noise * t.std() * torch.randn_like(t)
        nr = [(noisy(k), noisy(v)) for k, v in rkv]
        ns = [(noisy(k), noisy(v)) for k, v in skv]
        fused = []
        for l in range(len(rkv)):
            fk, fv = projectors[l]((ns[layer_map[l]][0], ns[layer_map[l]][1]), nr[l])
            fused.append((rkv[l][0] + fk - nr[l][0], rkv[l][1] + fv - nr[l][1]))
    logits, _ = receiver(tid, torch.cat([hmask, tmask], dim=1), tpos, fused)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def sample_batch(tok, ents, rng, bs, types=("mc", "short")):
    out = []
    for _ in range(bs):
        it = world.make_item(rng.choice(ents), rng.choice(list(world.ASKS)), rng.choice(list(types)), rng)
        out.append((tok.encode(world.chat(it["prompt"])), tok.encode(it["answer"] + "<|im_end|>")))
    return out


@torch.no_grad()
def c2c_accuracy(tok, receiver, sharer, projectors, layer_map, ents, n, seed) -> dict:
    for p in projectors:
        p.eval()
    return world.probe_accuracy(tok, ents, n, seed, lambda ids: infer.c2c_greedy(
        receiver, sharer, projectors, layer_map, ids, 6, world.eos_ids(tok)))


def fuser_optimizer_step(loss, params, opt, sched, projectors, step: int) -> None:
    """Backward, clip to 1.0, AdamW + LR schedule step, then the gates' geometric temperature update (C2C §6)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    for pr in projectors:
        pr.update_temperature(step)


def stage_fuser(P: dict, out: Path, log) -> dict:
    ents, _ = world.build_world(P)
    F_ = P["fuser"]
    train_ents = world.split_entities(ents, "fuser")
    val = world.split_entities(ents, "validation")
    receiver, tok = export.load_model_folder(out / "receiver")
    sharer, _ = export.load_model_folder(out / "sharer")
    for m in (receiver, sharer):
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
    steps, bs = F_["steps"], F_["batch"]
    torch.manual_seed(P["seed"] + 30)
    rng = random.Random(P["seed"] + 30)
    rc, sc = receiver.config, sharer.config
    layer_map = terminal_layer_map(rc.num_hidden_layers, sc.num_hidden_layers)
    projectors = make_projectors(rc, sc, F_, steps)
    params = [p for pr in projectors for p in pr.parameters()]
    opt = torch.optim.AdamW(params, lr=F_["lr"], weight_decay=F_.get("weight_decay", 0.01))
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(steps - warm, 1))))
    t0 = time.time()
    ema, hist, val_hist = None, [], []
    best = (-1.0, 0, None)  # (validation accuracy, step, projector states): the checkpoint is chosen on validation
    every = F_.get("val_every", 500)
    for step in range(1, steps + 1):
        for pr in projectors:
            pr.train()
        loss = fused_batch_loss(receiver, sharer, projectors, layer_map,
                                sample_batch(tok, train_ents, rng, bs, F_.get("types", ("mc", "short"))), F_.get("kv_noise", 0.0))
        fuser_optimizer_step(loss, params, opt, sched, projectors, step)
        ema = loss.item() if ema is None else 0.97 * ema + 0.03 * loss.item()
        if step % 50 == 0 or step == steps:
            log(f"[fuser] step {step}/{steps} loss {ema:.4f} tau {float(projectors[0].gate_temperature):.4f} "
                f"{time.time() - t0:.0f}s")
            hist.append((step, round(ema, 4)))
        if step % every == 0 or step == steps:
            acc = c2c_accuracy(tok, receiver, sharer, projectors, layer_map, val, F_.get("val_items", 80), 7)
            mean = (acc["mc"] + acc["short"]) / 2
            val_hist.append((step, acc))
            log(f"[fuser] step {step} C2C validation {acc}"
                f" train {c2c_accuracy(tok, receiver, sharer, projectors, layer_map, train_ents, 40, 7)}")
            if mean > best[0]:
                best = (mean, step, [copy.deepcopy(pr.state_dict()) for pr in projectors])
    for pr, sd in zip(projectors, best[2]):
        pr.load_state_dict(sd)
    for pr in projectors:
        pr.eval()
    log(f"[fuser] keeping the step-{best[1]} checkpoint (validation C2C {best[0]:.3f})")
    gates = [{"key": float(pr.key_gate_logit), "value": float(pr.value_gate_logit)} for pr in projectors]
    info = {"steps": steps, "batch_size": bs, "lr": F_["lr"], "seed": P["seed"] + 30, "wall_s": round(time.time() - t0, 1),
            "final_loss": round(ema, 4), "loss_history": hist, "gate_logits": gates,
            "params": sum(p.numel() for p in params), "layer_map": layer_map,
            "train_entities": f"fuser ({len(train_ents)})", "validation_history": val_hist, "chosen_step": best[1], "train_types": list(F_.get("types", ("mc", "short"))),
            "weight_decay": F_.get("weight_decay", 0.01), "dropout": F_.get("dropout", 0.1), "kv_noise": F_.get("kv_noise", 0.0), "hidden_dim": F_["hidden_dim"], "intermediate_dim": F_["intermediate_dim"],
            "num_layers": F_["num_layers"], "temperature": "geometric 1.0 -> 0.001 over all steps"}
    save_fuser(str(out / "fuser"), projectors, sc.num_hidden_layers, layer_map="terminal", dtype="float32",
               metadata={"trained_by": "train/train_fuser.py", **{k: v for k, v in info.items() if k != "loss_history"}})
    log(f"[fuser] saved {out / 'fuser'} gates {gates} wall {info['wall_s']}s")
    (out / "fuser_info.json").write_text(json.dumps(info, indent=2))
    return info
