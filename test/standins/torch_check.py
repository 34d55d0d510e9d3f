"""Loads stand-in fuser projector files with PyTorch's own loader and reports them for comparison.

    /usr/bin/python3 torch_check.py OUT_DIR FILE.pt [FILE.pt ...]

For each FILE.pt: torch.load(weights_only=True) (no arbitrary code), then writes OUT_DIR/<name>.safetensors
with every tensor as float32 and OUT_DIR/<name>.json with the state dict's type, key order, dtypes, shapes,
its _metadata keys, and the zip layout (entry names, whether each entry's data starts 64-byte aligned).
"""
import json
import os
import struct
import sys
import zipfile

import torch

from reference_decoder import write_safetensors  # same folder: sys.path[0] is this script's directory


def zip_layout(path):
    raw = open(path, "rb").read()
    out = []
    for info in zipfile.ZipFile(path).infolist():
        o = info.header_offset
        name_len, extra_len = struct.unpack("<HH", raw[o + 26:o + 30])
        start = o + 30 + name_len + extra_len
        out.append({"name": info.filename, "aligned64": start % 64 == 0, "compress_type": info.compress_type})
    return out


def main():
    out_dir = sys.argv[1]
    for path in sys.argv[2:]:
        sd = torch.load(path, map_location="cpu", weights_only=True)
        name = os.path.basename(path)[: -len(".pt")]
        write_safetensors(os.path.join(out_dir, name + ".safetensors"), sd)
        info = {
            "type": type(sd).__module__ + "." + type(sd).__name__,
            "keys": list(sd.keys()),
            "dtypes": {k: str(v.dtype) for k, v in sd.items()},
            "shapes": {k: list(v.shape) for k, v in sd.items()},
            "metadata": list(getattr(sd, "_metadata", {}).keys()),
            "zip": zip_layout(path),
        }
        json.dump(info, open(os.path.join(out_dir, name + ".json"), "w"))


if __name__ == "__main__":
    main()
