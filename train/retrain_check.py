"""Reproducibility check: retrain the shipped pair from scratch (a fresh `train_all.py` run of the stages lm, fuser
and eval, into its own folder) and compare its test-split accuracies with the shipped
models/c2c-tiny/eval_summary.json, mode by mode. Writes the comparison as JSON.

    /usr/bin/python3 train/retrain_check.py [--out DIR] [--json bench/retrain-check.json]

The cross-tokenizer variant (stage hetero) is not retrained here: it does not change the main pair's numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

MODES = ("receiver", "sharer", "text_relay", "c2c")
FIELDS = ("accuracy", "mc", "short")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def compare(shipped: dict, rerun: dict) -> dict:
    """Per mode and field: both values and the difference in points (rerun − shipped)."""
    out, worst = {}, 0.0
    for m in MODES:
        out[m] = {}
        for f in FIELDS:
            a, b = shipped[m][f], rerun[m][f]
            d = round(100 * (b - a), 2)
            out[m][f] = {"shipped": a, "rerun": b, "diff_points": d}
            worst = max(worst, abs(d))
    return {"modes": out, "max_abs_diff_points": worst}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None, help="folder for the fresh run (default: a new temporary folder)")
    ap.add_argument("--json", default=str(common.REPO / "bench" / "retrain-check.json"))
    ap.add_argument("--shipped", default=str(common.MODELS / "c2c-tiny" / "eval_summary.json"))
    args = ap.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="c2c-retrain-"))
    t0 = time.time()
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "train_all.py"), "--out", str(out),
           "--stages", "lm,fuser,eval"]
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    wall = round(time.time() - t0, 1)
    shipped = json.loads(Path(args.shipped).read_text())
    rerun = json.loads((out / "eval_summary.json").read_text())
    res = {"generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "what": "a fresh train_all.py run (stages lm, fuser, eval; same seeds) against the shipped pair, test split",
           "machine": {"cpu": cpu_name(), "threads": common.torch.get_num_threads(),
                       "gpu": None},
           "wall_s": wall, "stage_times": json.loads((out / "stage_times.json").read_text()),
           "test": compare(shipped["test"], rerun["test"]),
           "validation": compare(shipped["validation"], rerun["validation"])}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({"test_max_abs_diff_points": res["test"]["max_abs_diff_points"], "wall_s": wall, "json": args.json}))


if __name__ == "__main__":
    main()
