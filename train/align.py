"""Cross-tokenizer token alignment for C2C (c2c-reference §3), for a one-user-turn ChatML prompt.

Receiver tokens are the base. The prompt splits into template / message / template sections; template
sections keep each model's own tokens and the shorter side is right-padded with its pad token; in the
message section every receiver token is decoded alone and re-encoded with the sharer tokenizer, keeping
exactly one sharer token (`first` = first id, `longest` = the candidate whose decoded text is longest).
Both sequences share position ids 0..L-1; only message tokens are fused.
"""
from __future__ import annotations

from typing import Dict, List

from bpe import BPETokenizer

PAD = "<|endoftext|>"


def map_token(recv: BPETokenizer, shar: BPETokenizer, rid: int, strategy: str) -> int:
    text = recv.decode([rid])
    if text in shar.specials:
        return shar.token_id(text)
    cands = shar.encode(text)
    if len(cands) == 1:
        return cands[0]
    if not cands:
        return shar.token_id(PAD)
    if strategy == "first":
        return cands[0]
    if strategy == "longest":
        best = cands[0]
        for c in cands[1:]:  # first of equal length wins
            if len(shar.decode([c])) > len(shar.decode([best])):
                best = c
        return best
    raise ValueError(f"alignment strategy must be 'first' or 'longest', got {strategy!r}")


def align_chat(recv: BPETokenizer, shar: BPETokenizer, user: str, strategy: str = "longest") -> Dict[str, List[int]]:
    """Aligned ids for `<|im_start|>user\\n{user}<|im_end|>\\n<|im_start|>assistant\\n`.

    Returns receiver_ids, sharer_ids (equal length), message_mask (1 = fuse), receiver_mask and sharer_mask
    (1 = real token, 0 = padding) and the section list [(kind, start, end)]."""
    sections = [("template", "<|im_start|>user\n"), ("message", user), ("template", "<|im_end|>\n<|im_start|>assistant\n")]
    r_ids, s_ids, msg, r_mask, s_mask, spans = [], [], [], [], [], []
    for kind, text in sections:
        start = len(r_ids)
        r = recv.encode(text)
        if kind == "message":
            s = [map_token(recv, shar, t, strategy) for t in r]
            r_ids += r
            s_ids += s
            r_mask += [1] * len(r)
            s_mask += [1] * len(r)
            msg += [1] * len(r)
        else:
            s = shar.encode(text)
            n = max(len(r), len(s))
            r_ids += r + [recv.token_id(PAD)] * (n - len(r))
            s_ids += s + [shar.token_id(PAD)] * (n - len(s))
            r_mask += [1] * len(r) + [0] * (n - len(r))
            s_mask += [1] * len(s) + [0] * (n - len(s))
            msg += [0] * n
        spans.append((kind, start, len(r_ids)))
    return {"receiver_ids": r_ids, "sharer_ids": s_ids, "message_mask": msg, "receiver_mask": r_mask,
            "sharer_mask": s_mask, "sections": spans}
