/**
 * Prefix reuse inside a host (exact multi-turn reuse): a prefill that continues the first `tokens` tokens of a
 * kept cache, and a fusion that keeps the first `tokens` fused tokens of an earlier prompt and fuses only the
 * rest. Both are exact: prefill is causal and the fuser works token by token, so the result equals a full
 * prefill and a full fusion of the whole prompt (up to float rounding of the shorter matmuls). Kept GPU
 * tensors are brought to the CPU first (prefix reuse runs on CPU caches).
 */
import { InvalidInputError } from '../errors';
import type { Fuser, KVCache, ModelInfo, ModelRole } from '../types';
import type { CausalLM } from '../models/causal-lm';
import { presentToKVCache } from '../kv/convert';
import { concatCache, sliceCache } from '../kv/ops';
import { disposeTensors } from '../models/causal-lm';
import { keptToCpu } from './fusion';
import type { KeptKV, KVRegistry } from './kv-registry';

/** Checks a reuse length against the kept entry it refers to. */
function checkTokens(tokens: number, entry: KeptKV, what: string): void {
  if (!Number.isInteger(tokens) || tokens < 0 || tokens > entry.seq) {
    throw new InvalidInputError(`${what}.tokens ${tokens} is outside the kept cache's 0..${entry.seq} tokens`,
      { field: `${what}.tokens`, actual: tokens });
  }
}

/** Prefill of `ids` after the first `base.tokens` tokens of a kept cache (consumed). Returns the full cache and mask. */
export async function prefillFromBase(
  m: CausalLM,
  kept: KVRegistry,
  role: ModelRole,
  base: { handle: number; tokens: number },
  ids: number[],
  positions: number[] | undefined,
  mask: number[] | undefined,
): Promise<{ kv: KVCache; mask?: number[] }> {
  const entry = kept.take(base.handle, role);
  try {
    checkTokens(base.tokens, entry, 'base');
    const full = await keptToCpu(entry, m.info);
    const prefix = base.tokens === entry.seq ? full : sliceCache(full, 0, base.tokens);
    const prefixMask = entry.mask?.slice(0, base.tokens);
    const fullMask = prefixMask || mask ? [...(prefixMask ?? new Array(base.tokens).fill(1)), ...(mask ?? ids.map(() => 1))] : undefined;
    if (ids.length === 0) return { kv: prefix, mask: fullMask };
    const pos = positions ?? ids.map((_, i) => base.tokens + i);
    const past = base.tokens > 0 ? m.pastFromKV(prefix) : null;
    const { present } = await m.forward(ids, pos, past, fullMask);
    const kv = await presentToKVCache(present as never, m.info.numLayers);
    disposeTensors(present);
    return { kv, mask: fullMask };
  } finally {
    disposeTensors(entry.present);
  }
}

export interface FuseFromBaseInput {
  fuser: Fuser;
  kept: KVRegistry;
  receiver: KeptKV;
  /** The sharer's whole cache (`covers` 0) or only its tokens from `covers` on (sent by another worker). */
  sharer: { kv?: KVCache; present?: KeptKV['present']; covers: number };
  info: { receiver: ModelInfo; sharer: Pick<ModelInfo, 'numLayers'> };
  fusedBase?: { handle: number; tokens: number };
  ranges?: [number, number][];
  signal?: AbortSignal;
}

/** The fused cache of `receiver` as a new CPU cache: the base's first tokens, then the rest fused; inputs untouched. */
export async function fuseFromBase(x: FuseFromBaseInput): Promise<KVCache> {
  const r = x.receiver;
  let from = 0;
  let base: KVCache | undefined;
  if (x.fusedBase) {
    const b = x.kept.take(x.fusedBase.handle, 'receiver');
    try {
      checkTokens(x.fusedBase.tokens, b, 'fusedBase');
      from = Math.min(x.fusedBase.tokens, r.seq);
      const bkv = await keptToCpu(b, x.info.receiver);
      base = from === b.seq ? bkv : sliceCache(bkv, 0, from);
    } finally {
      disposeTensors(b.present);
    }
  }
  const rKV = await keptToCpu(r, x.info.receiver);
  if (from === r.seq) return base ?? rKV;
  const sFull = x.sharer.kv ?? (await presentToKVCache(x.sharer.present as never, x.info.sharer.numLayers));
  if (x.sharer.covers > from) {
    throw new InvalidInputError(`the sharer KV starts at token ${x.sharer.covers}, after the first token to fuse (${from})`,
      { field: 'sharer' });
  }
  // The sharer KV covers tokens [covers, covers + its length): the ones to fuse are [from, end).
  const sNew = sliceCache(sFull, from - x.sharer.covers, sFull[0]?.key.seq ?? 0);
  const rNew = from === 0 ? rKV : sliceCache(rKV, from, r.seq);
  if (sNew[0]?.key.seq !== rNew[0]?.key.seq) {
    throw new InvalidInputError(`receiver has ${rNew[0]?.key.seq} tokens to fuse, the sharer ${sNew[0]?.key.seq}`, { field: 'sharer' });
  }
  // Ranges are absolute token positions: shift them onto the tokens being fused, drop what is before `from`.
  const spans = (x.ranges ?? [[0, r.seq]]).map(([a, b]): [number, number] => [Math.max(a, from) - from, b - from]).filter(
    ([a, b]) => b > a);
  let fused = rNew;
  for (const [start, end] of spans) fused = await x.fuser.fuse(fused, sNew, { start, end, signal: x.signal });
  return base ? concatCache(base, fused) : fused;
}
