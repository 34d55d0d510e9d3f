"""Write PyTorch tokenization/greedy references for model folders and run train/check_node.mjs on them."""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import List, Sequence

import infer
from bpe import render_chat
from common import REPO

EXTRA_TEXTS = ["Hello world!  Tabs\tand\nnewlines", "naïve café ☕ 😀", "<|im_start|>user\nHi<|im_end|>\n",
               "Numbers 12345 and 3.14", "  leading spaces"]


def build_case(folder: Path, name: str, model, tok, users: Sequence[str], max_new: int = 12) -> dict:
    texts = list(users) + EXTRA_TEXTS
    eos = [tok.token_id("<|im_end|>"), tok.token_id("<|endoftext|>")]
    gens = []
    for u in users:
        ids = tok.encode(render_chat([{"role": "user", "content": u}]))
        gens.append({"user": u, "prompt_ids": ids, "output_ids": infer.greedy(model, ids, max_new, eos), "max_new": max_new})
    return {"name": name, "texts": [{"text": t, "ids": tok.encode(t)} for t in texts], "gens": gens}


def run_node_check(root: Path, cases: List[dict], log=print) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"root": str(root), "models": cases}, f)
    r = subprocess.run(["node", str(REPO / "train" / "check_node.mjs"), f.name], cwd=REPO, capture_output=True, text=True)
    Path(f.name).unlink()
    if r.returncode != 0:
        log(r.stderr[-3000:])
        raise RuntimeError(f"transformers.js parity check failed: {r.stdout[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])
