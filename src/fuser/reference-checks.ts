/**
 * Input validation shared by every fuser backend: KV tensor dims against the fuser config, cache layer counts,
 * equal token counts and token ranges (weight shapes: `checkFuserWeights` in shapes.ts).
 * Dims that disagree with the fuser or each other → ShapeMismatchError; malformed arguments → InvalidInputError.
 */
import { InvalidInputError, ShapeMismatchError } from '../errors';
import type { KVCache, KVTensor, FuserConfig, ModelKVDims } from '../types';

/** Checks one KV tensor: integer dims, seq ≥ 1, data length, heads/headDim equal to the model dims. */
export function checkKVTensor(t: KVTensor, dims: ModelKVDims, what: string): void {
  for (const f of ['heads', 'seq', 'headDim'] as const) {
    if (!Number.isInteger(t[f]) || t[f] < 0) {
      throw new InvalidInputError(`${what}.${f} must be a non-negative integer, got ${t[f]}`, { field: `${what}.${f}`, actual: t[f] });
    }
  }
  if (t.seq === 0) throw new InvalidInputError(`${what}.seq is 0: nothing to fuse`, { field: `${what}.seq`, actual: 0 });
  const dtype = t.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float16') {
    throw new InvalidInputError(`${what}.dtype must be 'float32' or 'float16', got ${String(dtype)}`,
      { field: `${what}.dtype`, actual: dtype });
  }
  const Want = dtype === 'float16' ? Uint16Array : Float32Array;
  if (!(t.data instanceof Want)) {
    throw new InvalidInputError(`${what}.data must be a ${Want.name} (${dtype} KV)`, { field: `${what}.data`, expected: Want.name });
  }
  const want = t.heads * t.seq * t.headDim;
  if (t.data.length !== want) {
    throw new InvalidInputError(`${what}.data has ${t.data.length} elements, heads*seq*headDim = ${t.heads}*${t.seq}*${t.headDim} = ${want}`, {
      field: `${what}.data`, expected: want, actual: t.data.length,
    });
  }
  if (t.heads !== dims.kvHeads) {
    throw new ShapeMismatchError(`${what}.heads is ${t.heads}, the fuser expects ${dims.kvHeads} KV heads`, {
      field: `${what}.heads`, expected: dims.kvHeads, actual: t.heads,
    });
  }
  if (t.headDim !== dims.headDim) {
    throw new ShapeMismatchError(`${what}.headDim is ${t.headDim}, the fuser expects ${dims.headDim}`, {
      field: `${what}.headDim`, expected: dims.headDim, actual: t.headDim,
    });
  }
}

/** Checks both caches against the fuser (dims, one dtype per cache) and returns the common token count. */
export function checkCacheShapes(cfg: FuserConfig, receiver: KVCache, sharer: KVCache): number {
  for (const [name, cache, dims] of [['receiver', receiver, cfg.receiver], ['sharer', sharer, cfg.sharer]] as const) {
    if (!Array.isArray(cache)) throw new InvalidInputError(`${name} cache must be an array of layers`, { field: name });
    if (cache.length !== dims.numLayers) {
      throw new ShapeMismatchError(`${name} cache has ${cache.length} layers, the fuser expects ${dims.numLayers}`, {
        field: `${name}.length`, expected: dims.numLayers, actual: cache.length,
      });
    }
  }
  let seq = -1;
  let first = '';
  for (const [name, cache, dims] of [['receiver', receiver, cfg.receiver], ['sharer', sharer, cfg.sharer]] as const) {
    const dtype = cache[0]?.key?.dtype ?? 'float32';
    cache.forEach((layer, l) => {
      for (const kv of ['key', 'value'] as const) {
        const what = `${name}[${l}].${kv}`;
        const t = layer?.[kv];
        if (!t) throw new InvalidInputError(`${what} is missing`, { field: what });
        checkKVTensor(t, dims, what);
        if ((t.dtype ?? 'float32') !== dtype) {
          throw new InvalidInputError(`${what} is ${t.dtype ?? 'float32'} but ${name}[0].key is ${dtype}: one dtype per cache`,
            { field: `${what}.dtype`, expected: dtype, actual: t.dtype });
        }
        if (seq < 0) {
          seq = t.seq;
          first = what;
        } else if (t.seq !== seq) {
          throw new ShapeMismatchError(`${what}.seq is ${t.seq} but ${first}.seq is ${seq}: sharer and receiver must cover the same tokens`, {
            field: `${what}.seq`, expected: seq, actual: t.seq,
          });
        }
      }
    });
  }
  return seq;
}

/** Resolves an optional [start, end) token range; integers with 0 ≤ start ≤ end ≤ seq. */
export function resolveRange(seq: number, start?: number, end?: number): [number, number] {
  const s = start ?? 0;
  const e = end ?? seq;
  if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > seq || s > e) {
    throw new InvalidInputError(`token range [${start}, ${end}) is invalid for seq ${seq} (need integers 0 ≤ start ≤ end ≤ seq)`, {
      field: 'start/end', expected: `0 <= start <= end <= ${seq}`, actual: [start, end],
    });
  }
  return [s, e];
}

export { checkPathParams } from './shapes';
