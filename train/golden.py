"""Pipeline stage `report`: golden fixtures for the TS runtime and the final report/manifest.

golden/golden.json: for a few held-out prompts (both item types) the prompt ids and the greedy output ids of
every mode (receiver, sharer, text relay incl. the hint prompt/ids and the relay prompt, C2C).
golden/kv.safetensors: per case c, the unfused receiver and sharer prefill caches over prompt[:-1] and the
fused receiver cache (fuser in float32, hard gates), first tokens of every layer, plus first-step logits.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch

import export
import infer
import st
import world
from evaluate import run_modes
from report import render_report
from train_fuser import load_projectors
from world import decode_answer, eos_ids, eval_items

N_CASES = 6
KV_TOKENS = 16


def stage_golden(P: dict, out: Path, log) -> None:
    ents, _ = world.build_world(P)
    receiver, tok = export.load_model_folder(out / "receiver")
    sharer, _ = export.load_model_folder(out / "sharer")
    projectors, layer_map = load_projectors(out / "fuser")
    items = eval_items(P, ents, "test")
    # alternate MC / short, spread over entities and attributes
    picks = [items[(i * 37) % len(items)] for i in range(4 * N_CASES)]
    chosen = [p for p in picks if p["type"] == "mc"][: N_CASES // 2] + [p for p in picks if p["type"] == "short"][: N_CASES - N_CASES // 2]
    cases, tensors = [], {}
    for c, it in enumerate(chosen):
        r = run_modes(it, tok, receiver, sharer, projectors, layer_map, P)
        prompt = r["prompt_ids"]
        head = prompt[:-1]
        rkv = infer.prefill(receiver, head)
        skv = infer.prefill(sharer, head)
        with torch.no_grad():
            fused = infer.fuse_kv(projectors, layer_map, rkv, skv)
            logits_c2c, _ = receiver(torch.tensor([[prompt[-1]]]), torch.ones(1, len(prompt), dtype=torch.long),
                                     torch.tensor([[len(head)]]), fused)
            logits_r, _ = receiver(torch.tensor([prompt]))
        n = min(KV_TOKENS, len(head))
        tensors[f"c{c}.seq"] = torch.tensor([len(head)], dtype=torch.int32)
        for l, (k, v) in enumerate(rkv):
            tensors[f"c{c}.receiver.{l}.key"] = k[0, :, :n]
            tensors[f"c{c}.receiver.{l}.value"] = v[0, :, :n]
            tensors[f"c{c}.fused.{l}.key"] = fused[l][0][0, :, :n]
            tensors[f"c{c}.fused.{l}.value"] = fused[l][1][0, :, :n]
        for j, (k, v) in enumerate(skv):
            tensors[f"c{c}.sharer.{j}.key"] = k[0, :, :n]
            tensors[f"c{c}.sharer.{j}.value"] = v[0, :, :n]
        tensors[f"c{c}.c2c.first_logits"] = logits_c2c[0, -1]
        tensors[f"c{c}.receiver.first_logits"] = logits_r[0, -1]
        case = {"case": c, "id": it["id"], "type": it["type"], "user": it["prompt"], "answer": it["answer"],
                "prompt_ids": prompt, "kv_tokens": n}
        for m in ("receiver", "sharer", "text_relay", "c2c"):
            case[m] = {"output_ids": r[m], "text": decode_answer(tok, r[m])}
        case["text_relay"].update(hint_prompt_ids=r["hint_prompt_ids"], hint_ids=r["hint_ids"], hint_text=r["hint_text"],
                                  relay_user=world.with_hint(it["prompt"], r["hint_text"]),
                                  relay_prompt_ids=r["relay_prompt_ids"])
        cases.append(case)
    g = out / "golden"
    g.mkdir(exist_ok=True)
    meta = {"description": "Greedy outputs of every mode and fused-KV slices for the TS runtime. C2C: receiver and "
                           "sharer prefill over prompt_ids[:-1] (positions 0..N-2), fuse all those tokens in every "
                           "receiver layer l with sharer layer layer_map[l] (fuser float32, hard gates), then the "
                           "receiver runs prompt_ids[-1] at position N-1 and decodes greedily.",
            "layer_map": layer_map, "max_new_tokens": P["max_new_tokens"], "hint_max_tokens": P["hint_max_tokens"],
            "eos_token_ids": eos_ids(tok), "kv_layout": "[kv_heads, tokens, head_dim] float32, tokens 0..kv_tokens-1",
            "kv_file": "kv.safetensors", "cases": cases}
    (g / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")
    st.save(tensors, g / "kv.safetensors", {"format": "c2c-web golden"})
    log(f"[golden] {len(cases)} cases -> {g}")
    write_report(P, out, log)


def write_manifest(root: Path) -> dict:
    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            files[str(p.relative_to(root))] = {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "bytes": p.stat().st_size}
    man = {"generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files}
    (root / "manifest.json").write_text(json.dumps(man, indent=1) + "\n")
    return man


def folder_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def write_report(P: dict, out: Path, log) -> None:
    lm = json.loads((out / "lm_info.json").read_text())
    fz = json.loads((out / "fuser_info.json").read_text())
    ev = json.loads((out / "eval_summary.json").read_text())
    times = json.loads((out / "stage_times.json").read_text()) if (out / "stage_times.json").exists() else {}
    pair = {"name": out.name, "receiver": "receiver", "sharer": "sharer", "fuser": "fuser", "story": world.STORY,
            "tokenizer": "shared (same tokenizer.json in both folders); no token alignment",
            "prompt": {"chat_template": "receiver tokenizer_config.json chat_template, one user turn, add_generation_prompt",
                       "mc": "Question: {question}\\nOptions: {four options, comma-separated}.\\nAnswer with one of the options.",
                       "short": "{question}\\nAnswer with one word.",
                       "text_relay_sharer": "Write a hint for: {question}",
                       "text_relay_receiver": "{prompt}\\nHint: {hint}"},
            "world": {"sharer_knows": "each person's city and job (plain sentences; it writes the one fact a question needs)",
                      "receiver_knows": "city -> country, job -> workplace, the question formats, its own few people",
                      "questions": {k: q for k, (_, q) in world.ASKS.items()}, "hop": world.HOP},
            "eval": {"set": "eval_test.jsonl", "validation_set": "eval_validation.jsonl", "greedy": True, "max_new_tokens": P["max_new_tokens"],
                     "hint_max_tokens": P["hint_max_tokens"], "answer": "decoded text up to <|im_end|>, stripped, exact match"},
            "c2c": {"fuse_tokens": "0..N-2 (prompt[:-1])", "layer_map": fz["layer_map"], "gates": "hard (logit > 0)"}}
    (out / "pair.json").write_text(json.dumps(pair, indent=2) + "\n")
    report = {"pair": out.name, "params": P, "eval": ev, "receiver": _lm(lm["receiver"]), "sharer": _lm(lm["sharer"]),
              "fuser": {k: v for k, v in fz.items() if k != "loss_history"}, "node_parity": lm.get("node_parity"),
              "stage_wall_s": times,
              "hetero": json.loads((out / "hetero_info.json").read_text()) if (out / "hetero_info.json").exists() else None,
              "sizes_bytes": {d: folder_bytes(out / d) for d in ("receiver", "sharer", "fuser", "golden", "sharer_b", "fuser_b")
                              if (out / d).exists()}}
    rdir = out.parent if out.parent.name == "models" else out
    (rdir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (rdir / "REPORT.md").write_text(render_report(report))
    man = write_manifest(rdir)
    log(f"[report] {rdir / 'REPORT.md'}; manifest {len(man['files'])} files")


def _lm(i: dict) -> dict:
    return {k: v for k, v in i.items() if k != "loss_history"}
