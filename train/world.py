"""Seeded invented world: entities with attributes, fact sentences, QA items (multiple choice and short answer),
hint requests for text relay, and the receiver/sharer training streams.

E1: receiver's entities (it learns QA format and answer vocabulary on them). E2: sharer-only, used for fuser
training. E3: sharer-only, held out for evaluation. The sharer knows every fact.

Pipeline stage `world` (train/train_all.py): the world, its tokenizer and item sets, and the answer rules (eos,
decoding, a seeded accuracy probe over any `generate`) that the later stages (lm, fuser, eval, report) share.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Dict, List, Optional

from bpe import BPETokenizer, render_chat

ATTRS: Dict[str, List[str]] = {
    "city": ["Paris", "Lima", "Oslo", "Cairo", "Tokyo", "Rome", "Dublin", "Quito"],
    "job": ["baker", "pilot", "doctor", "farmer", "painter", "teacher", "nurse", "sailor"],
    "pet": ["cat", "dog", "parrot", "rabbit", "turtle", "horse", "goat", "hamster"],
    "colour": ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"],
}
FACT_TEMPLATES = {
    "city": ["{n} lives in {v}.", "{n} resides in {v}.", "The home of {n} is in {v}.", "{n} has a house in {v}."],
    "job": ["{n} works as a {v}.", "{n} is a {v} by trade.", "By profession, {n} is a {v}.", "The job of {n} is {v}."],
    "pet": ["{n} has a pet {v}.", "{n} owns a {v}.", "{n} keeps a {v} at home.", "The pet of {n} is a {v}."],
    "colour": ["The favourite colour of {n} is {v}.", "{n} likes the colour {v} best.", "{n} loves the colour {v}.",
               "{n} prefers {v} to any other colour."],
}
QUESTIONS = {
    "city": "Which city does {n} live in?",
    "job": "What is the job of {n}?",
    "pet": "What pet does {n} have?",
    "colour": "What is the favourite colour of {n}?",
}
LETTERS = "ABCD"
SYLL_ON = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr", "sh", "th"]
SYLL_V = ["a", "e", "i", "o", "u", "ai", "ou"]
SYLL_END = ["", "", "n", "r", "s", "l"]


@dataclass
class Entity:
    name: str
    attrs: Dict[str, str]
    split: str  # E1 | E2 | E3 | X (fresh, only for hint-copy training)


def invent_names(rng: random.Random, k: int, taken: Optional[set] = None) -> List[str]:
    taken = set() if taken is None else taken
    out: List[str] = []
    while len(out) < k:
        n = "".join(rng.choice(SYLL_ON) + rng.choice(SYLL_V) for _ in range(rng.choice([2, 3]))) + rng.choice(SYLL_END)
        n = n.capitalize()
        if 4 <= len(n) <= 10 and n not in taken:
            taken.add(n)
            out.append(n)
    return out


def make_world(seed: int, n1: int, n2: int, n3: int) -> List[Entity]:
    rng = random.Random(seed)
    names = invent_names(rng, n1 + n2 + n3)
    ents = []
    for i, n in enumerate(names):
        split = "E1" if i < n1 else ("E2" if i < n1 + n2 else "E3")
        ents.append(Entity(n, {a: rng.choice(v) for a, v in ATTRS.items()}, split))
    return ents


def extra_entities(seed: int, n: int, taken: set, split: str = "E4") -> List[Entity]:
    """More sharer-only entities from an independent stream (the base world, and so the tokenizer and
    the receiver, are unchanged by adding them)."""
    rng = random.Random(seed)
    names = invent_names(rng, n, set(taken))
    return [Entity(nm, {a: rng.choice(v) for a, v in ATTRS.items()}, split) for nm in names]


def fresh_entity(rng: random.Random, taken: set) -> Entity:
    return Entity(invent_names(rng, 1, taken)[0], {a: rng.choice(v) for a, v in ATTRS.items()}, "X")


def fact_sentence(e: Entity, attr: str, rng: Optional[random.Random] = None) -> str:
    t = FACT_TEMPLATES[attr]
    return (rng.choice(t) if rng else t[0]).format(n=e.name, v=e.attrs[attr])


def make_item(e: Entity, attr: str, kind: str, rng: random.Random) -> dict:
    """One QA item. kind 'mc' (answer is a letter) or 'short' (answer is the attribute word)."""
    q = QUESTIONS[attr].format(n=e.name)
    if kind == "short":
        return {"entity": e.name, "split": e.split, "attr": attr, "type": "short", "question": q,
                "prompt": f"{q}\nAnswer with one word.", "answer": e.attrs[attr]}
    opts = rng.sample([v for v in ATTRS[attr] if v != e.attrs[attr]], 3) + [e.attrs[attr]]
    rng.shuffle(opts)
    body = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(opts))
    return {"entity": e.name, "split": e.split, "attr": attr, "type": "mc", "question": q, "options": opts,
            "prompt": f"Question: {q}\n{body}\nAnswer with the letter.", "answer": LETTERS[opts.index(e.attrs[attr])]}


def hint_request(question: str) -> str:
    """The sharer's user message in text relay: it answers with a one-sentence hint."""
    return f"Write a hint for: {question}"


def with_hint(prompt: str, hint: str) -> str:
    """The receiver's user message in text relay (the paper's T2T appends the sharer's text)."""
    return f"{prompt}\nHint: {hint}"


def chat(user: str) -> str:
    return render_chat([{"role": "user", "content": user}], add_generation_prompt=True)


def bio(e: Entity, rng: random.Random) -> str:
    attrs = list(ATTRS)
    rng.shuffle(attrs)
    return " ".join(fact_sentence(e, a, rng) for a in attrs[: rng.randint(1, 4)])


# --- training streams: each sample is (prompt_text, target_text); target '' means LM on the whole prompt ---

def sharer_sample(ents: List[Entity], rng: random.Random) -> tuple:
    e = rng.choice(ents)
    r = rng.random()
    attr = rng.choice(list(ATTRS))
    if r < 0.2:
        return bio(e, rng) + "<|endoftext|>", ""
    if r < 0.8:
        it = make_item(e, attr, "mc" if r < 0.5 else "short", rng)
        return chat(it["prompt"]), it["answer"] + "<|im_end|>"
    return chat(hint_request(QUESTIONS[attr].format(n=e.name))), fact_sentence(e, attr) + "<|im_end|>"


def receiver_sample(e1: List[Entity], taken: set, rng: random.Random) -> tuple:
    r = rng.random()
    attr = rng.choice(list(ATTRS))
    kind = "mc" if rng.random() < 0.5 else "short"
    if r < 0.15:
        return bio(rng.choice(e1), rng) + "<|endoftext|>", ""
    if r < 0.55:
        it = make_item(rng.choice(e1), attr, kind, rng)
        return chat(it["prompt"]), it["answer"] + "<|im_end|>"
    # hint use: mostly fresh names so the answer must be copied from the hint, not recalled
    e = rng.choice(e1) if r < 0.62 else fresh_entity(rng, set(taken))
    it = make_item(e, attr, kind, rng)
    return chat(with_hint(it["prompt"], fact_sentence(e, attr))), it["answer"] + "<|im_end|>"


def tokenizer_corpus(ents: List[Entity], seed: int) -> List[str]:
    rng = random.Random(seed)
    out = []
    taken = {e.name for e in ents}
    for _ in range(3000):
        out.append(sharer_sample(ents, rng)[0] + sharer_sample(ents, rng)[1])
        s = receiver_sample([e for e in ents if e.split == "E1"], taken, rng)
        out.append(s[0] + s[1])
    return out


def build_world(P: dict):
    """Base world (E1, E2, E3; it alone defines the tokenizer) plus E4, extra sharer-only fuser-training entities."""
    W = dict(P["world"])
    n4 = W.pop("n4", 0)
    ents = make_world(P["seed"], **W)
    tok = BPETokenizer.train(tokenizer_corpus(ents, P["seed"] + 1), P["vocab_size"])
    if n4:
        ents = ents + extra_entities(P["seed"] + 4, n4, {e.name for e in ents})
    return ents, tok


def eval_items(P: dict, ents: List[Entity], split: str = "E3") -> List[dict]:
    """Fixed held-out set: every (entity, attribute) of the split, once as MC and once as short answer."""
    rng = random.Random(P["seed"] + 99)
    items = []
    for e in ents:
        if e.split != split:
            continue
        for a in ATTRS:
            for kind in ("mc", "short"):
                items.append(make_item(e, a, kind, rng))
    for i, it in enumerate(items):
        it["id"] = f"{split}-{i:04d}"
    return items


# --- answers: what every stage counts as the model's answer ---

def eos_ids(tok) -> List[int]:
    return [tok.token_id("<|im_end|>"), tok.token_id("<|endoftext|>")]


def decode_answer(tok, ids: List[int]) -> str:
    """The generated text before the first eos, stripped."""
    eos = set(eos_ids(tok))
    cut = next((i for i, t in enumerate(ids) if t in eos), len(ids))
    return tok.decode(ids[:cut]).strip()


def probe_accuracy(tok, ents: List[Entity], n: int, seed: int, generate) -> dict:
    """Accuracy per item type on n seeded items (alternating short/MC); generate(ids) -> output ids."""
    rng = random.Random(seed)
    hit = {"mc": 0, "short": 0}
    cnt = {"mc": 0, "short": 0}
    for i in range(n):
        it = make_item(rng.choice(ents), rng.choice(list(ATTRS)), "mc" if i % 2 else "short", rng)
        ans = decode_answer(tok, generate(tok.encode(chat(it["prompt"]))))
        cnt[it["type"]] += 1
        hit[it["type"]] += int(ans == it["answer"])
    return {k: round(hit[k] / max(cnt[k], 1), 3) for k in hit}
