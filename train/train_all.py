"""One command that rebuilds the tiny C2C pair from scratch with fixed seeds:

    /usr/bin/python3 train/train_all.py              # full run into models/c2c-tiny (see models/REPORT.md)
    /usr/bin/python3 train/train_all.py --smoke --out <dir>    # a few steps end to end (< 2 min)

Stages (each reads the previous stages' files from --out, so `--stages fuser,eval,golden` resumes):
  lm     world + tokenizer, train receiver and sharer, export both folders (ONNX + tokenizer), Node parity check
  fuser  train the C2C fuser (both LLMs frozen) on the `fuser` entities, checkpoint chosen on `validation`
  eval   validation and test accuracy for receiver / sharer / text relay / C2C (eval_summary.json)
  hetero second sharer with its own tokenizer + a fuser trained through token alignment (sharer_b/, fuser_b/)
  golden fixtures for the TS runtime (prompt ids, greedy ids of every mode, fused-KV slices), REPORT.md +
         report.json, manifest

Modules form a pipeline; each imports only its own or earlier layers (train/tests/test_pipeline.py checks it):
  shared  common, st, bpe, qwen3, infer, align, export, c2c/   (no stage imports)
  world   world.py                     the task: entities, items, tokenizer, answer rules
  lm      train_lm.py, node_check.py   receiver and sharer
  fuser   train_fuser.py, train_hetero.py
  eval    evaluate.py
  report  golden.py, report.py
This file is the driver on top; make_golden_fuser.py and make_official_checkpoints.py use only c2c/.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (threads, OMP policy; first)
import evaluate  # noqa: E402
import golden  # noqa: E402
import train_fuser  # noqa: E402
import train_hetero  # noqa: E402
import train_lm  # noqa: E402

FULL = {
    "seed": 1234,
    # entity splits (train/world.py): the receiver's own people, fuser training, validation, test; all disjoint
    "world": {"receiver": 80, "fuser": 500, "validation": 60, "test": 60},
    "vocab_size": 512,
    "receiver": {"cfg": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                             head_dim=32, intermediate_size=384),
                 "steps": 3000, "batch": 32, "lr": 3e-3},
    "sharer": {"cfg": dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=4,
                           head_dim=16, intermediate_size=512),
               "steps": 4500, "batch": 32, "lr": 3e-3},
    # fuser recipe: trained on the `fuser` entities, MC + short items, noise on the fuser inputs and dropout against
    # memorising entity fingerprints; the checkpoint is the best on `validation` (see models/REPORT.md)
    "fuser": {"hidden_dim": 96, "intermediate_dim": 96, "num_layers": 3, "steps": 4000, "batch": 16, "lr": 2e-3,
              "types": ["mc", "short"], "kv_noise": 0.5, "dropout": 0.2, "weight_decay": 0.1, "val_every": 500,
              "val_items": 80},
    "hetero": {"vocab_size": 640, "strategy": "longest", "steps": 3500, "batch": 32, "lr": 3e-3, "fuser_steps": 4000,
               "cfg": dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2,
                           head_dim=24, intermediate_size=512)},
    "hint_max_tokens": 256,  # the paper's text relay: the sharer writes first, capped at 256 tokens
    "max_new_tokens": 8,
}
SMOKE = json.loads(json.dumps(FULL))
SMOKE["world"] = {"receiver": 12, "fuser": 12, "validation": 6, "test": 6}
for k in ("receiver", "sharer"):
    SMOKE[k]["steps"] = 20
    SMOKE[k]["batch"] = 8
SMOKE["fuser"].update(steps=10, batch=4, val_every=5, val_items=4)
SMOKE["hetero"].update(steps=20, batch=8, fuser_steps=10)
SMOKE["hint_max_tokens"] = 24  # untrained smoke sharers rarely stop: keep the smoke run short


class Log:
    def __init__(self, path: Path):
        self.f = open(path, "a")

    def __call__(self, *a):
        # repo-relative paths only: the log is shipped next to the models
        s = " ".join(str(x) for x in a).replace(str(common.REPO) + "/", "")
        print(s, flush=True)
        self.f.write(s + "\n")
        self.f.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None, help="output folder (default models/c2c-tiny; --smoke needs an explicit one)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--fuser-json", default=None, help="JSON overriding fuser settings (experiments)")
    ap.add_argument("--resume", action="store_true", help="lm and hetero stages: keep already trained model folders (receiver, sharer, sharer_b)")
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
    common.warn_if_slow_blas()
    times = {}
    for st in stages:
        ts = time.time()
        if st == "lm":
            train_lm.stage_lm(P, out, log, args.resume)
        elif st == "fuser":
            train_fuser.stage_fuser(P, out, log)
        elif st == "eval":
            evaluate.stage_eval(P, out, log, args.smoke)
        elif st == "hetero":
            train_hetero.stage_hetero(P, out, log, args.smoke, args.resume)
        elif st == "golden":
            golden.stage_golden(P, out, log)
        else:
            raise SystemExit(f"unknown stage {st}")
        times[st] = round(time.time() - ts, 1)
        log(f"[train_all] stage {st} done in {times[st]}s")
        # after every stage, so the report (written by `golden`) sees the wall times of the stages before it
        prev = json.loads((out / "stage_times.json").read_text()) if (out / "stage_times.json").exists() else {}
        prev.update(times)
        (out / "stage_times.json").write_text(json.dumps(prev, indent=2))
    log(f"[train_all] total {time.time() - t0:.0f}s")
    if "golden" in stages:  # last: the manifest must cover stage_times.json and the log lines just written
        golden.write_manifest(out.parent if out.parent.name == "models" else out)


if __name__ == "__main__":
    main()
