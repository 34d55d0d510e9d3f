"""Seeded invented world where each model holds half of what a question needs.

- The **sharer** knows the people: where each one lives (a city) and what each one does (a job), and writes it in
  plain sentences. It never sees a country, a workplace or an answer format.
- The **receiver** knows the second hop (city -> country, job -> workplace), the question format with its options,
  and how to read a `Hint:` line, but not the people (except its own few, split `receiver`).
A question such as "In which country does Bora live?" needs both: Bora -> Oslo (sharer) and Oslo -> Norway
(receiver). Alone, each model sits at or below chance; text relay and C2C both need communication.

Entity splits, all disjoint: `receiver` (the receiver's own people: it learns the QA format on them), `fuser`
(fuser training), `validation` (every recipe choice is made here) and `test` (reported, never tuned on). The
sharer knows everyone. `X` marks fresh names made up for the receiver's hint-reading practice.

Pipeline stage `world` (train/train_all.py): the world, its tokenizer and item sets, and the answer rules (eos,
decoding, a seeded accuracy probe over any `generate`) that the later stages share.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Dict, List, Optional

from bpe import BPETokenizer, render_chat

# what the sharer knows about every person
ATTRS: Dict[str, List[str]] = {
    "city": ["Paris", "Lima", "Oslo", "Cairo", "Tokyo", "Rome", "Dublin", "Quito"],
    "job": ["baker", "pilot", "doctor", "farmer", "painter", "teacher", "nurse", "sailor"],
}
# the receiver's second hop: attribute value -> answer
HOP: Dict[str, Dict[str, str]] = {
    "city": dict(zip(ATTRS["city"], ["France", "Peru", "Norway", "Egypt", "Japan", "Italy", "Ireland", "Ecuador"])),
    "job": dict(zip(ATTRS["job"], ["bakery", "airport", "hospital", "farm", "studio", "school", "clinic", "harbour"])),
}
# question kind -> (the attribute it needs, the question)
ASKS: Dict[str, tuple] = {
    "country": ("city", "In which country does {n} live?"),
    "workplace": ("job", "Where does {n} work?"),
}
ANSWERS: Dict[str, List[str]] = {k: [HOP[a][v] for v in ATTRS[a]] for k, (a, _) in ASKS.items()}
BIO_TEMPLATES = {
    "city": ["{n} lives in {v}.", "{n} resides in {v}.", "The home of {n} is in {v}.", "{n} has a house in {v}."],
    "job": ["{n} works as a {v}.", "{n} is a {v} by trade.", "By profession, {n} is a {v}.", "The job of {n} is {v}."],
}
# the sentence the sharer writes when asked about a person: the fact comes first, so the sharer's cache over the
# question already holds it (C2C fuses only the prompt's cache)
HINT_TEMPLATES = {"city": "{v} is where {n} lives.", "job": "{V} is the job of {n}."}
HOP_TEMPLATES = {"city": "{v} is in {a}.", "job": "A {v} works at the {a}."}
SPLITS = ("receiver", "fuser", "validation", "test")
# the demo's two sentences (pair.json `story`)
STORY = {"sharer": "The sharer knows where each person lives and what each one does, and says so in plain sentences; "
                   "it was never taught a country, a workplace or how to answer.",
         "receiver": "The receiver knows which country each city is in, where each job is done and how to answer, "
                     "but not the people: every question needs both."}
SYLL_ON = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr", "sh", "th"]
SYLL_V = ["a", "e", "i", "o", "u", "ai", "ou"]
SYLL_END = ["", "", "n", "r", "s", "l"]


@dataclass
class Entity:
    name: str
    attrs: Dict[str, str]
    split: str  # one of SPLITS, or X (fresh, only for hint-reading practice)


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


def make_world(seed: int, sizes: Dict[str, int]) -> List[Entity]:
    rng = random.Random(seed)
    names = invent_names(rng, sum(sizes[s] for s in SPLITS))
    ents, i = [], 0
    for s in SPLITS:
        for _ in range(sizes[s]):
            ents.append(Entity(names[i], {a: rng.choice(v) for a, v in ATTRS.items()}, s))
            i += 1
    return ents


def fresh_entity(rng: random.Random, taken: set) -> Entity:
    return Entity(invent_names(rng, 1, taken)[0], {a: rng.choice(v) for a, v in ATTRS.items()}, "X")


def answer_of(e: Entity, ask: str) -> str:
    attr = ASKS[ask][0]
    return HOP[attr][e.attrs[attr]]


def fact_sentence(e: Entity, ask: str) -> str:
    """What the sharer writes for a question of kind `ask` about e (the canonical hint)."""
    attr = ASKS[ask][0]
    v = e.attrs[attr]
    return HINT_TEMPLATES[attr].format(n=e.name, v=v, V=v.capitalize())


def make_item(e: Entity, ask: str, kind: str, rng: random.Random) -> dict:
    """One QA item. kind 'mc' (four shuffled options; the answer is the right option, written out) or 'short'
    (no options; one word). MC is answered by the option's text, not its letter: the 0.85M receiver never learned
    to look a letter up (see models/REPORT.md), and a letter answer would leave MC at chance in every mode."""
    q = ASKS[ask][1].format(n=e.name)
    gold = answer_of(e, ask)
    base = {"entity": e.name, "split": e.split, "ask": ask, "type": kind, "question": q, "value": e.attrs[ASKS[ask][0]]}
    if kind == "short":
        return {**base, "prompt": f"{q}\nAnswer with one word.", "answer": gold}
    opts = rng.sample([v for v in ANSWERS[ask] if v != gold], 3) + [gold]
    rng.shuffle(opts)
    return {**base, "options": opts, "prompt": f"Question: {q}\nOptions: {', '.join(opts)}.\nAnswer with one of the options.",
            "answer": gold}


def hint_request(question: str) -> str:
    """The sharer's user message in text relay: it writes what it knows about the person asked for."""
    return f"Write a hint for: {question}"


def with_hint(prompt: str, hint: str) -> str:
    """The receiver's user message in text relay (the paper's T2T appends the sharer's text)."""
    return f"{prompt}\nHint: {hint}"


def chat(user: str) -> str:
    return render_chat([{"role": "user", "content": user}], add_generation_prompt=True)


def bio(e: Entity, rng: random.Random) -> str:
    attrs = list(ATTRS)
    rng.shuffle(attrs)
    return " ".join(rng.choice(BIO_TEMPLATES[a]).format(n=e.name, v=e.attrs[a]) for a in attrs[: rng.randint(1, 2)])


def hop_sentence(rng: random.Random) -> str:
    attr = rng.choice(list(ATTRS))
    v = rng.choice(ATTRS[attr])
    return HOP_TEMPLATES[attr].format(v=v, a=HOP[attr][v])


# --- training streams: each sample is (prompt_text, target_text); target '' means LM on the whole prompt ---

def sharer_sample(ents: List[Entity], rng: random.Random) -> tuple:
    """Bios, and: asked anything about a person (a hint request or a question in either format), the sharer writes
    the one fact the question turns on. It never sees an answer, a country or a workplace."""
    e = rng.choice(ents)
    r = rng.random()
    ask = rng.choice(list(ASKS))
    if r < 0.3:
        return bio(e, rng) + "<|endoftext|>", ""
    if r < 0.55:
        user = hint_request(ASKS[ask][1].format(n=e.name))
    else:
        user = make_item(e, ask, "mc" if r < 0.78 else "short", rng)["prompt"]
    return chat(user), fact_sentence(e, ask) + "<|im_end|>"


def receiver_sample(own: List[Entity], taken: set, rng: random.Random) -> tuple:
    """Bios of its own people, the hop table, QA on its own people, and QA with a sharer-style hint (mostly on fresh
    names, so the answer must come from the hint plus the hop)."""
    r = rng.random()
    ask = rng.choice(list(ASKS))
    kind = "mc" if rng.random() < 0.6 else "short"
    if r < 0.08:
        return bio(rng.choice(own), rng) + "<|endoftext|>", ""
    if r < 0.13:
        return " ".join(hop_sentence(rng) for _ in range(3)) + "<|endoftext|>", ""
    if r < 0.45:
        it = make_item(rng.choice(own), ask, kind, rng)
        return chat(it["prompt"]), it["answer"] + "<|im_end|>"
    e = rng.choice(own) if r < 0.5 else fresh_entity(rng, set(taken))
    it = make_item(e, ask, kind, rng)
    return chat(with_hint(it["prompt"], fact_sentence(e, ask))), it["answer"] + "<|im_end|>"


def tokenizer_corpus(ents: List[Entity], seed: int) -> List[str]:
    rng = random.Random(seed)
    out = []
    taken = {e.name for e in ents}
    own = [e for e in ents if e.split == "receiver"]
    for _ in range(3000):
        out.append("".join(sharer_sample(ents, rng)))
        out.append("".join(receiver_sample(own, taken, rng)))
    return out


def build_world(P: dict):
    """The entities of every split and the shared tokenizer (trained on both models' streams)."""
    ents = make_world(P["seed"], P["world"])
    tok = BPETokenizer.train(tokenizer_corpus(ents, P["seed"] + 1), P["vocab_size"])
    return ents, tok


def split_entities(ents: List[Entity], split: str) -> List[Entity]:
    return [e for e in ents if e.split == split]


def eval_items(P: dict, ents: List[Entity], split: str) -> List[dict]:
    """Fixed item set of a split: every (entity, question kind), once as MC and once as short answer."""
    rng = random.Random(P["seed"] + 99 + SPLITS.index(split))
    items = []
    for e in split_entities(ents, split):
        for ask in ASKS:
            for kind in ("mc", "short"):
                items.append(make_item(e, ask, kind, rng))
    for i, it in enumerate(items):
        it["id"] = f"{split}-{i:04d}"
    return items


# --- answers: what every stage counts as the model's answer ---

def tally(counts: dict, n: int) -> dict:
    """counts: {"mc": [hit, n], "short": [hit, n]} -> accuracy block."""
    tot = counts["mc"][0] + counts["short"][0]
    return {"accuracy": round(tot / max(n, 1), 4), "mc": round(counts["mc"][0] / max(counts["mc"][1], 1), 4),
            "short": round(counts["short"][0] / max(counts["short"][1], 1), 4), "correct": tot, "n": n}


def eos_ids(tok) -> List[int]:
    return [tok.token_id("<|im_end|>"), tok.token_id("<|endoftext|>")]


def decode_answer(tok, ids: List[int]) -> str:
    """The generated text before the first eos, stripped."""
    eos = set(eos_ids(tok))
    cut = next((i for i, t in enumerate(ids) if t in eos), len(ids))
    return tok.decode(ids[:cut]).strip()


def probe_accuracy(tok, ents: List[Entity], n: int, seed: int, generate, hinted: bool = False) -> dict:
    """Accuracy per item type on n seeded items (alternating short/MC); generate(ids) -> output ids. hinted=True
    appends the canonical hint (the receiver reading a perfect text relay)."""
    rng = random.Random(seed)
    hit = {"mc": 0, "short": 0}
    cnt = {"mc": 0, "short": 0}
    for i in range(n):
        e, ask = rng.choice(ents), rng.choice(list(ASKS))
        it = make_item(e, ask, "mc" if i % 2 else "short", rng)
        user = with_hint(it["prompt"], fact_sentence(e, ask)) if hinted else it["prompt"]
        ans = decode_answer(tok, generate(tok.encode(chat(user))))
        cnt[it["type"]] += 1
        hit[it["type"]] += int(ans == it["answer"])
    return {k: round(hit[k] / max(cnt[k], 1), 3) for k in hit}


def probe_hint(tok, ents: List[Entity], n: int, seed: int, generate) -> float:
    """Share of n seeded hint requests the sharer answers with exactly the canonical fact sentence."""
    rng = random.Random(seed)
    ok = 0
    for _ in range(n):
        e, ask = rng.choice(ents), rng.choice(list(ASKS))
        out = decode_answer(tok, generate(tok.encode(chat(hint_request(ASKS[ask][1].format(n=e.name))))))
        ok += int(out == fact_sentence(e, ask))
    return round(ok / max(n, 1), 3)
