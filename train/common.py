"""Shared runtime settings for the training scripts (threads, paths)."""
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("C2C_TRAIN_THREADS", "2")))


def blas_library() -> str:
    """Where torch's libblas.so.3 resolved to in this process (after one matmul): 'reference' is netlib's."""
    torch.ones(8, 8) @ torch.ones(8, 8)
    try:
        paths = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines() if "libblas.so" in line}
    except OSError:
        return "unknown"
    if not paths:
        return "unknown"  # torch bundles its own BLAS (MKL builds) or links another name
    return "reference" if any("/blas/libblas.so" in p for p in paths) else ", ".join(sorted(paths))


def warn_if_slow_blas() -> None:
    """Debian's python3-torch links libblas.so.3, the reference BLAS unless OpenBLAS is installed: 20-40x slower."""
    if blas_library() == "reference":
        print("[train] WARNING: torch runs on the reference BLAS (20-40x slower); "
              "install Debian's libopenblas0-pthread (apt-get install -y libopenblas0-pthread)", flush=True)


TRAIN_DIR = Path(__file__).resolve().parent
REPO = TRAIN_DIR.parent
MODELS = REPO / "models"
