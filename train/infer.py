"""Greedy decoding for the four modes (receiver, sharer, text relay, C2C), batch 1, exactly the flow the
TS runtime implements: for C2C, prefill receiver and sharer over prompt[:-1], fuse every receiver layer with
its mapped sharer layer on those tokens, then run the receiver on the last prompt token and decode."""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from qwen3 import KVList, Qwen3ForCausalLM


@torch.no_grad()
def greedy_from_cache(model: Qwen3ForCausalLM, past: Optional[KVList], last_ids: Sequence[int], start_pos: int,
                      max_new: int, eos: Sequence[int]) -> List[int]:
    """Run `last_ids` at positions start_pos.. on top of `past`, then decode greedily until eos/max_new."""
    out: List[int] = []
    ids = torch.tensor([list(last_ids)])
    pos = start_pos
    for _ in range(max_new):
        n = ids.shape[1]
        logits, past = model(ids, position_ids=torch.arange(pos, pos + n).unsqueeze(0), past=past,
                             attention_mask=torch.ones(1, pos + n, dtype=torch.long))
        nxt = int(logits[0, -1].argmax())
        out.append(nxt)
        if nxt in eos:
            break
        pos += n
        ids = torch.tensor([[nxt]])
    return out


@torch.no_grad()
def greedy(model: Qwen3ForCausalLM, prompt: Sequence[int], max_new: int, eos: Sequence[int]) -> List[int]:
    return greedy_from_cache(model, None, prompt, 0, max_new, eos)


@torch.no_grad()
def prefill(model: Qwen3ForCausalLM, ids: Sequence[int]) -> KVList:
    _, present = model(torch.tensor([list(ids)]), position_ids=torch.arange(len(ids)).unsqueeze(0))
    return present


def fuse_kv(projectors, layer_map: Sequence[int], recv: KVList, shar: KVList) -> KVList:
    """Fuse all tokens of the given caches (the caller passes caches over prompt[:-1])."""
    return [projectors[l]((shar[layer_map[l]][0], shar[layer_map[l]][1]), recv[l]) for l in range(len(recv))]


@torch.no_grad()
def c2c_greedy(receiver, sharer, projectors, layer_map, prompt: Sequence[int], max_new: int, eos,
               return_cache: bool = False):
    head = list(prompt[:-1])
    fused = fuse_kv(projectors, layer_map, prefill(receiver, head), prefill(sharer, head))
    out = greedy_from_cache(receiver, fused, [prompt[-1]], len(head), max_new, eos)
    return (out, fused) if return_cache else out
