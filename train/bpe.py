"""Byte-level BPE tokenizer: training, encoding/decoding, and an HF `tokenizer.json` writer.

Structure follows Qwen2/3 (platform notes §9): Split(ASCII regex, Isolated) then ByteLevel(use_regex=false),
BPE model, ByteLevel decoder/post-processor. The ASCII regex keeps Python `re` and JS RegExp in agreement.
Specials come first (ids 0..k-1), then the 256 byte tokens, then merges.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Dict, Iterable, List, Sequence, Tuple

SPLIT_REGEX = r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|sep|>"]
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2 byte -> printable unicode char table (what ByteLevel uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()
U2B = {v: k for k, v in B2U.items()}
_split = re.compile(SPLIT_REGEX)
_special_re = re.compile("(" + "|".join(re.escape(s) for s in SPECIALS) + ")")


def pretokenize(text: str) -> List[str]:
    return ["".join(B2U[b] for b in m.encode("utf-8")) for m in _split.findall(text)]


class BPETokenizer:
    def __init__(self, merges: List[Tuple[str, str]], specials: Sequence[str] = SPECIALS):
        self.specials = list(specials)
        self.merges = list(merges)
        self.vocab: Dict[str, int] = {s: i for i, s in enumerate(self.specials)}
        for b in range(256):
            self.vocab[B2U[b]] = len(self.vocab)
        for a, b in self.merges:
            self.vocab[a + b] = len(self.vocab)
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self._cache: Dict[str, List[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def token_id(self, s: str) -> int:
        return self.vocab[s]

    @staticmethod
    def train(texts: Iterable[str], vocab_size: int, specials: Sequence[str] = SPECIALS) -> "BPETokenizer":
        counts: Counter = Counter()
        for t in texts:
            for part in _special_re.split(t):
                if part and part not in specials:
                    counts.update(pretokenize(part))
        words = {w: list(w) for w in counts}
        merges: List[Tuple[str, str]] = []
        n_merges = vocab_size - len(specials) - 256
        while len(merges) < n_merges:
            pairs: Counter = Counter()
            for w, syms in words.items():
                c = counts[w]
                for i in range(len(syms) - 1):
                    pairs[(syms[i], syms[i + 1])] += c
            if not pairs:
                break
            best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]  # deterministic tie-break
            merges.append(best)
            a, b = best
            for w, syms in words.items():
                i, out = 0, []
                while i < len(syms):
                    if i < len(syms) - 1 and syms[i] == a and syms[i + 1] == b:
                        out.append(a + b)
                        i += 2
                    else:
                        out.append(syms[i])
                        i += 1
                words[w] = out
        return BPETokenizer(merges, specials)

    def _bpe(self, piece: str) -> List[int]:
        if piece in self._cache:
            return self._cache[piece]
        syms = list(piece)
        while len(syms) > 1:
            best, bi = None, -1
            for i in range(len(syms) - 1):
                r = self.ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            syms = syms[:bi] + [syms[bi] + syms[bi + 1]] + syms[bi + 2:]
        ids = [self.vocab[s] for s in syms]
        self._cache[piece] = ids
        return ids

    def encode(self, text: str) -> List[int]:
        ids: List[int] = []
        for part in _special_re.split(text):
            if not part:
                continue
            if part in self.specials:
                ids.append(self.vocab[part])
                continue
            for p in pretokenize(part):
                ids.extend(self._bpe(p))
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        out, buf = [], bytearray()
        for i in ids:
            t = self.id_to_token[int(i)]
            if t in self.specials:
                if buf:
                    out.append(buf.decode("utf-8", errors="replace"))
                    buf = bytearray()
                if not skip_special_tokens:
                    out.append(t)
            else:
                buf.extend(U2B[ch] for ch in t)
        if buf:
            out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    def to_hf_json(self) -> dict:
        added = [{"id": self.vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": True} for s in self.specials]
        return {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": SPLIT_REGEX}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": self.vocab, "merges": [f"{a} {b}" for a, b in self.merges]},
        }

    def tokenizer_config(self, max_len: int) -> dict:
        added = {str(self.vocab[s]): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                      "single_word": False, "special": True} for s in self.specials}
        return {"tokenizer_class": "Qwen2Tokenizer", "added_tokens_decoder": added, "bos_token": None,
                "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None,
                "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "chat_template": CHAT_TEMPLATE,
                "padding_side": "left", "model_max_length": max_len, "clean_up_tokenization_spaces": False,
                "errors": "replace", "split_special_tokens": False}

    @staticmethod
    def from_hf_json(d: dict) -> "BPETokenizer":
        specials = [t["content"] for t in sorted(d["added_tokens"], key=lambda t: t["id"])]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in d["model"]["merges"]]
        tok = BPETokenizer(merges, specials)
        if tok.vocab != d["model"]["vocab"]:
            raise ValueError("tokenizer.json vocab does not match its merges")
        return tok


def render_chat(messages: List[dict], add_generation_prompt: bool = True) -> str:
    """Python rendering of CHAT_TEMPLATE (kept in sync; the Node check compares ids)."""
    s = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return s + ("<|im_start|>assistant\n" if add_generation_prompt else "")
