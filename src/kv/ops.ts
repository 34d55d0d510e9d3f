/**
 * Token-range operations on one KV tensor (`[kv_heads, seq, head_dim]`, batch 1): copy, slice and splice.
 * Every fuser backend and the hosts use these, so a range means the same everywhere.
 */
import type { KVCache, KVTensor } from '../types/kv';

/** A KVTensor over existing data (no copy). */
export function kvTensor(data: Float32Array, heads: number, seq: number, headDim: number): KVTensor {
  return { data, heads, seq, headDim };
}

/** A deep copy (the result owns its data). */
export function copyTensor(t: KVTensor): KVTensor {
  return { ...t, data: t.data.slice() };
}

/** Tokens [start, end) of every head as a new tensor (a copy). */
export function sliceSeq(t: KVTensor, start: number, end: number): KVTensor {
  const n = end - start;
  const out = new Float32Array(t.heads * n * t.headDim);
  for (let h = 0; h < t.heads; h++) {
    out.set(t.data.subarray((h * t.seq + start) * t.headDim, (h * t.seq + end) * t.headDim), h * n * t.headDim);
  }
  return { ...t, data: out, seq: n };
}

/** The data of tokens [start, end): the tensor's own array when the range is the whole sequence, else a copy. */
export function seqRangeData(t: KVTensor, start: number, end: number): Float32Array {
  return start === 0 && end === t.seq ? t.data : sliceSeq(t, start, end).data;
}

/** A copy of `t` with tokens [start, end) replaced by `part` (`[heads, end - start, head_dim]`). */
export function spliceSeq(t: KVTensor, part: Float32Array, start: number, end: number): KVTensor {
  const n = end - start;
  if (part.length !== t.heads * n * t.headDim) throw new RangeError(`spliceSeq: ${part.length} values for ${t.heads}×${n}×${t.headDim}`);
  if (start === 0 && end === t.seq) return { ...t, data: part.slice() };
  const data = t.data.slice();
  for (let h = 0; h < t.heads; h++) data.set(part.subarray(h * n * t.headDim, (h + 1) * n * t.headDim), (h * t.seq + start) * t.headDim);
  return { ...t, data };
}

/** Tokens [start, end) of every layer of a cache (copies). */
export function sliceCache(cache: KVCache, start: number, end: number): KVCache {
  return cache.map((l) => ({ key: sliceSeq(l.key, start, end), value: sliceSeq(l.value, start, end) }));
}

/** `a` followed by `b` along the sequence, layer by layer (same heads and head dims). */
export function concatCache(a: KVCache, b: KVCache): KVCache {
  if (a.length !== b.length) throw new RangeError(`concatCache: ${a.length} vs ${b.length} layers`);
  const cat = (x: KVTensor, y: KVTensor): KVTensor => {
    if (x.heads !== y.heads || x.headDim !== y.headDim) throw new RangeError('concatCache: heads or head dims differ');
    const seq = x.seq + y.seq;
    const data = new Float32Array(x.heads * seq * x.headDim);
    for (let h = 0; h < x.heads; h++) {
      data.set(x.data.subarray(h * x.seq * x.headDim, (h + 1) * x.seq * x.headDim), h * seq * x.headDim);
      data.set(y.data.subarray(h * y.seq * y.headDim, (h + 1) * y.seq * y.headDim), (h * seq + x.seq) * x.headDim);
    }
    return { ...x, data, seq };
  };
  return a.map((l, i) => ({ key: cat(l.key, b[i].key), value: cat(l.value, b[i].value) }));
}
