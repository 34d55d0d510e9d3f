"""Pipeline stage `eval`: greedy evaluation on the validation and test entities (disjoint from each other, from
the fuser's training entities and from the receiver's own): receiver alone, sharer alone, text relay (the sharer
writes its hint first, then the hint is appended to the receiver prompt, as the paper's T2T) and C2C. Writes
eval_<split>.jsonl (the items), eval_rows.jsonl (test outputs) and eval_summary.json (`validation` and `test`
blocks with per-mode accuracy, MC and short answer separately); the report stage turns them into REPORT.md."""
from __future__ import annotations

import json
import time
from pathlib import Path

import export
import infer
import world
from train_fuser import load_projectors
from world import decode_answer, eos_ids, eval_items, tally


def run_modes(item: dict, tok, receiver, sharer, projectors, layer_map, P: dict) -> dict:
    """Greedy outputs of all four modes for one item (ids and timings)."""
    eos = eos_ids(tok)
    mx = P["max_new_tokens"]
    prompt = tok.encode(world.chat(item["prompt"]))
    res = {"prompt_ids": prompt}
    t = time.perf_counter()
    res["receiver"] = infer.greedy(receiver, prompt, mx, eos)
    res["t_receiver"] = time.perf_counter() - t
    t = time.perf_counter()
    res["sharer"] = infer.greedy(sharer, prompt, mx, eos)
    res["t_sharer"] = time.perf_counter() - t
    t = time.perf_counter()
    hint_prompt = tok.encode(world.chat(world.hint_request(item["question"])))
    hint = infer.greedy(sharer, hint_prompt, P["hint_max_tokens"], eos)
    hint_text = decode_answer(tok, hint)
    relay_prompt = tok.encode(world.chat(world.with_hint(item["prompt"], hint_text)))
    res["text_relay"] = infer.greedy(receiver, relay_prompt, mx, eos)
    res["t_text_relay"] = time.perf_counter() - t
    res.update(hint_prompt_ids=hint_prompt, hint_ids=hint, hint_text=hint_text, relay_prompt_ids=relay_prompt)
    t = time.perf_counter()
    res["c2c"] = infer.c2c_greedy(receiver, sharer, projectors, layer_map, prompt, mx, eos)
    res["t_c2c"] = time.perf_counter() - t
    return res


MODES = ("receiver", "sharer", "text_relay", "c2c")
EVAL_SPLITS = ("validation", "test")


def eval_split(P: dict, items: list, ents, tok, receiver, sharer, projectors, layer_map, log) -> tuple:
    acc = {m: {"mc": [0, 0], "short": [0, 0]} for m in MODES}
    times = {m: 0.0 for m in MODES}
    by_name = {e.name: e for e in ents}
    rows, hint_ok, hint_len = [], 0, []
    for i, it in enumerate(items):
        r = run_modes(it, tok, receiver, sharer, projectors, layer_map, P)
        row = {"id": it["id"], "type": it["type"], "answer": it["answer"], "hint": r["hint_text"]}
        for m in MODES:
            a = decode_answer(tok, r[m])
            acc[m][it["type"]][0] += int(a == it["answer"])
            acc[m][it["type"]][1] += 1
            times[m] += r["t_" + m]
            row[m] = a
        hint_ok += int(r["hint_text"] == world.fact_sentence(by_name[it["entity"]], it["ask"]))
        hint_len.append(len(r["hint_ids"]))
        rows.append(row)
        if (i + 1) % 100 == 0:
            log(f"[eval] {i + 1}/{len(items)}")
    n = len(items)
    block = {m: {**tally(acc[m], n), "mean_ms_per_item": round(1000 * times[m] / max(n, 1), 2)} for m in MODES}
    block["hint_exact"] = round(hint_ok / max(n, 1), 4)
    block["hint_tokens_mean"] = round(sum(hint_len) / max(n, 1), 2)
    block["entities"] = len({it["entity"] for it in items})
    return block, rows


def own_entities_check(P: dict, ents, tok, receiver, smoke: bool) -> dict:
    """The receiver answering (MC and short) about its own people: the skill the MC numbers rest on (the sharer's
    skill, writing the exact fact, is `hint_exact` in each split's block)."""
    items = eval_items(P, ents, "receiver")[: 16 if smoke else None]
    c = {"mc": [0, 0], "short": [0, 0]}
    for it in items:
        a = decode_answer(tok, infer.greedy(receiver, tok.encode(world.chat(it["prompt"])), P["max_new_tokens"], eos_ids(tok)))
        c[it["type"]][0] += int(a == it["answer"])
        c[it["type"]][1] += 1
    return tally(c, len(items))


def stage_eval(P: dict, out: Path, log, smoke: bool) -> dict:
    ents, _ = world.build_world(P)
    receiver, tok = export.load_model_folder(out / "receiver")
    sharer, _ = export.load_model_folder(out / "sharer")
    projectors, layer_map = load_projectors(out / "fuser")
    summary = {}
    for split in EVAL_SPLITS:
        items = eval_items(P, ents, split)
        if smoke:
            items = items[:24]
        (out / f"eval_{split}.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
        summary[split], rows = eval_split(P, items, ents, tok, receiver, sharer, projectors, layer_map, log)
        if split == "test":
            (out / "eval_rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        log(f"[eval] {split} {json.dumps(summary[split])}")
    summary["receiver_own"] = own_entities_check(P, ents, tok, receiver, smoke)
    (out / "eval_summary.json").write_text(json.dumps(summary, indent=2))
    return summary
