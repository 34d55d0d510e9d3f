"""One command that rebuilds the tiny C2C pair from scratch with fixed seeds:

    /usr/bin/python3 train/train_all.py              # full run into models/c2c-tiny (see models/REPORT.md)
    /usr/bin/python3 train/train_all.py --smoke --out <dir>    # a few steps end to end (< 2 min)

Stages (each reads the previous stages' files from --out, so `--stages fuser,eval,golden` resumes):
  lm     world + tokenizer, train receiver and sharer, export both folders (ONNX + tokenizer), Node parity check
  fuser  train the C2C fuser (both LLMs frozen) on E2 items, save in the c2c-web fuser format
  eval   held-out E3 accuracy for receiver / sharer / text relay / C2C, REPORT.md + report.json
  hetero second sharer with its own tokenizer + a fuser trained through token alignment (sharer_b/, fuser_b/)
  golden fixtures for the TS runtime (prompt ids, greedy ids of every mode, fused-KV slices), report, manifest
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402,F401  (threads, OMP policy)
import world  # noqa: E402
from bpe import BPETokenizer  # noqa: E402
from qwen3 import Qwen3Config  # noqa: E402

FULL = {
    "seed": 1234,
    "world": {"n1": 80, "n2": 100, "n3": 50, "n4": 250},
    "vocab_size": 512,
    "receiver": {"cfg": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                             head_dim=32, intermediate_size=384),
                 "steps": 2500, "batch": 32, "lr": 3e-3},
    "sharer": {"cfg": dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=4,
                           head_dim=16, intermediate_size=512),
               "steps": 4500, "batch": 32, "lr": 3e-3},
    # fuser recipe: trained on E2+E4 (350 sharer-only entities), short-answer items, noise on the fuser inputs
    # and dropout against memorising entity fingerprints (see models/REPORT.md, "fuser recipe")
    "fuser": {"hidden_dim": 96, "intermediate_dim": 96, "num_layers": 3, "steps": 4000, "batch": 16, "lr": 2e-3,
              "train_splits": ["E2", "E4"], "types": ["short"], "kv_noise": 0.5, "dropout": 0.2, "weight_decay": 0.1},
    "hetero": {"vocab_size": 640, "strategy": "longest", "steps": 3000, "batch": 32, "lr": 3e-3, "fuser_steps": 1200,
               "cfg": dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2,
                           head_dim=24, intermediate_size=512)},
    "hint_max_tokens": 24,
    "max_new_tokens": 8,
}
SMOKE = json.loads(json.dumps(FULL))
SMOKE["world"] = {"n1": 12, "n2": 12, "n3": 6, "n4": 6}
for k in ("receiver", "sharer"):
    SMOKE[k]["steps"] = 20
    SMOKE[k]["batch"] = 8
SMOKE["fuser"].update(steps=10, batch=4)
SMOKE["hetero"].update(steps=20, batch=8, fuser_steps=10)


class Log:
    def __init__(self, path: Path):
        self.f = open(path, "a")

    def __call__(self, *a):
        # repo-relative paths only: the log is shipped next to the models
        s = " ".join(str(x) for x in a).replace(str(common.REPO) + "/", "")
        print(s, flush=True)
        self.f.write(s + "\n")
        self.f.flush()


def build_world(P: dict):
    """Base world (E1, E2, E3; it alone defines the tokenizer) plus E4, extra sharer-only fuser-training entities."""
    W = dict(P["world"])
    n4 = W.pop("n4", 0)
    ents = world.make_world(P["seed"], **W)
    tok = BPETokenizer.train(world.tokenizer_corpus(ents, P["seed"] + 1), P["vocab_size"])
    if n4:
        ents = ents + world.extra_entities(P["seed"] + 4, n4, {e.name for e in ents})
    return ents, tok


def stage_lm(P: dict, out: Path, log, smoke: bool, resume: bool = False) -> dict:
    import export
    import node_check
    import train_lm
    from evaluate import quick_accuracy

    ents, tok = build_world(P)
    e1 = [e for e in ents if e.split == "E1"]
    taken = {e.name for e in ents if e.split != "E4"}
    info = {}
    for role in ("receiver", "sharer"):
        if resume and (out / role / "model.safetensors").exists() and (out / f"{role}_info.json").exists():
            info[role] = json.loads((out / f"{role}_info.json").read_text())
            log(f"[{role}] --resume: keeping {out / role}")
            continue
        R = P[role]
        cfg = Qwen3Config(vocab_size=tok.vocab_size, **R["cfg"])
        fn = (lambda r: world.sharer_sample(ents, r)) if role == "sharer" else (lambda r: world.receiver_sample(e1, taken, r))
        probe = [e for e in ents if e.split == ("E3" if role == "sharer" else "E1")]
        seed = P["seed"] + (10 if role == "sharer" else 20)
        model, inf = train_lm.train_lm(cfg, tok, fn, R["steps"], R["batch"], R["lr"], seed, log=log, name=role,
                                       eval_fn=lambda m: quick_accuracy(m, tok, probe, 40), eval_every=1000)
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
                 [(ents[0], "city", "mc"), (ents[-1], "pet", "short"), (ents[len(ents) // 2], "job", "short")]]
        users.append(world.hint_request(world.QUESTIONS["colour"].format(n=ents[-2].name)))
        cases.append(node_check.build_case(out / role, role, model, tok, users))
    res = node_check.run_node_check(out, cases, log)
    log(f"[lm] transformers.js parity {res}")
    info["node_parity"] = res
    (out / "lm_info.json").write_text(json.dumps(info, indent=2))
    return info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None, help="output folder (default models/c2c-tiny; --smoke needs an explicit one)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--fuser-json", default=None, help="JSON overriding fuser settings (experiments)")
    ap.add_argument("--resume", action="store_true", help="lm stage: keep an already trained model folder")
    ap.add_argument("--stages", default="lm,fuser,eval,hetero,golden")
    args = ap.parse_args()
    P = SMOKE if args.smoke else FULL
    if args.fuser_json:
        P["fuser"].update(json.loads(args.fuser_json))
    if args.out is None:
        if args.smoke:
            ap.error("--smoke needs --out (it never writes over the shipped models)")
        out = common.MODELS / "c2c-tiny"
    else:
        out = Path(args.out).resolve()
    if args.smoke and (out == common.MODELS / "c2c-tiny" or common.MODELS in out.parents or out == common.MODELS):
        ap.error("--smoke must not write under models/")
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "train_log.txt")
    stages = args.stages.split(",")
    t0 = time.time()
    log(f"[train_all] start {time.strftime('%Y-%m-%d %H:%M:%S')} smoke={args.smoke} stages={stages} out={out}")
    times = {}
    for st in stages:
        ts = time.time()
        if st == "lm":
            stage_lm(P, out, log, args.smoke, args.resume)
        elif st == "fuser":
            import train_fuser
            train_fuser.stage_fuser(P, out, log)
        elif st == "eval":
            import evaluate
            evaluate.stage_eval(P, out, log, args.smoke)
        elif st == "hetero":
            import train_hetero
            train_hetero.stage_hetero(P, out, log, args.smoke)
        elif st == "golden":
            import golden
            golden.stage_golden(P, out, log)
        else:
            raise SystemExit(f"unknown stage {st}")
        times[st] = round(time.time() - ts, 1)
        log(f"[train_all] stage {st} done in {times[st]}s")
    prev = json.loads((out / "stage_times.json").read_text()) if (out / "stage_times.json").exists() else {}
    prev.update(times)
    (out / "stage_times.json").write_text(json.dumps(prev, indent=2))
    log(f"[train_all] total {time.time() - t0:.0f}s")
    if "golden" in stages:  # last: the manifest must cover stage_times.json and the log lines just written
        import golden
        golden.write_manifest(out.parent if out.parent.name == "models" else out)


if __name__ == "__main__":
    main()
