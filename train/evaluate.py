"""Pipeline stage `eval`: greedy evaluation on held-out E3 items: receiver alone, sharer alone, text relay
(sharer hint appended to the receiver prompt, as the paper's T2T) and C2C. Writes eval_rows.jsonl and
eval_summary.json (the report stage turns them into report.json + REPORT.md)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import export
import infer
import world
from train_fuser import load_projectors
from world import decode_answer, eos_ids, eval_items


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


def stage_eval(P: dict, out: Path, log, smoke: bool) -> dict:
    ents, _ = world.build_world(P)
    receiver, tok = export.load_model_folder(out / "receiver")
    sharer, _ = export.load_model_folder(out / "sharer")
    projectors, layer_map = load_projectors(out / "fuser")
    items = eval_items(P, ents, "E3")
    (out / "eval_E3.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    acc = {m: {"mc": [0, 0], "short": [0, 0]} for m in MODES}
    times = {m: 0.0 for m in MODES}
    rows = []
    for i, it in enumerate(items):
        r = run_modes(it, tok, receiver, sharer, projectors, layer_map, P)
        row = {"id": it["id"], "type": it["type"], "answer": it["answer"], "hint": r["hint_text"]}
        for m in MODES:
            a = decode_answer(tok, r[m])
            ok = a == it["answer"]
            acc[m][it["type"]][0] += int(ok)
            acc[m][it["type"]][1] += 1
            times[m] += r["t_" + m]
            row[m] = a
        rows.append(row)
        if (i + 1) % 100 == 0:
            log(f"[eval] {i + 1}/{len(items)}")
    n = len(items)
    summary = {}
    for m in MODES:
        c = acc[m]
        tot = c["mc"][0] + c["short"][0]
        summary[m] = {"accuracy": round(tot / n, 4),
                      "mc": round(c["mc"][0] / max(c["mc"][1], 1), 4),
                      "short": round(c["short"][0] / max(c["short"][1], 1), 4),
                      "correct": tot, "n": n, "mean_ms_per_item": round(1000 * times[m] / n, 2)}
    hint_ok = sum(1 for r, it in zip(rows, items) if it["entity"] in r["hint"] and
                  world.ATTRS and r["hint"] == world.fact_sentence(next(e for e in ents if e.name == it["entity"]), it["attr"]))
    summary["hint_exact"] = round(hint_ok / n, 4)
    # sanity: the receiver on its own entities (E1) shows it learned the QA format
    e1_items = eval_items(P, ents, "E1")[: 160 if not smoke else 16]
    c = {"mc": [0, 0], "short": [0, 0]}
    for it in e1_items:
        a = decode_answer(tok, infer.greedy(receiver, tok.encode(world.chat(it["prompt"])), P["max_new_tokens"], eos_ids(tok)))
        c[it["type"]][0] += int(a == it["answer"])
        c[it["type"]][1] += 1
    summary["receiver_E1"] = {"accuracy": round((c["mc"][0] + c["short"][0]) / len(e1_items), 4),
                              "mc": round(c["mc"][0] / max(c["mc"][1], 1), 4),
                              "short": round(c["short"][0] / max(c["short"][1], 1), 4), "n": len(e1_items)}
    (out / "eval_rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    log(f"[eval] {json.dumps(summary)}")
    (out / "eval_summary.json").write_text(json.dumps(summary, indent=2))
    return summary
