"""Shared runtime settings for the training scripts (threads, paths)."""
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("C2C_TRAIN_THREADS", "2")))

TRAIN_DIR = Path(__file__).resolve().parent
REPO = TRAIN_DIR.parent
MODELS = REPO / "models"
