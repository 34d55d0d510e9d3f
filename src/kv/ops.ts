/**
 * Token-range operations on one KV tensor (`[kv_heads, seq, head_dim]`, batch 1): copy, slice and splice, plus
 * the dtype facts every backend needs (a tensor's dtype, widening to f32 for the math, rounding a result once
 * back to the model's dtype). Every fuser backend and the hosts use these, so a range means the same everywhere.
 */
import type { KVCache, KVDType, KVTensor, KVTensorF16, KVTensorF32 } from '../types/kv';
import { float16ArrayToFloat32, float32ArrayToFloat16 } from '../util/half';

/** A KVTensor over existing data (no copy); the dtype follows the array (Uint16Array = f16 bits). */
export function kvTensor(data: Float32Array, heads: number, seq: number, headDim: number): KVTensorF32;
export function kvTensor(data: Uint16Array, heads: number, seq: number, headDim: number): KVTensorF16;
export function kvTensor(data: Float32Array | Uint16Array, heads: number, seq: number, headDim: number): KVTensor {
  return data instanceof Uint16Array ? { dtype: 'float16', data, heads, seq, headDim } : { dtype: 'float32', data, heads, seq, headDim };
}

export function kvDTypeOf(t: KVTensor): KVDType {
  return t.dtype ?? 'float32';
}

/** The dtype of a cache (its first tensor; checkCacheShapes enforces one dtype per cache). Empty: float32. */
export function cacheDType(cache: KVCache): KVDType {
  return cache.length && cache[0]?.key ? kvDTypeOf(cache[0].key) : 'float32';
}

/** Bytes per stored KV element. */
export const kvElementBytes = (dtype: KVDType): number => (dtype === 'float16' ? 2 : 4);

/** A new zero tensor of `t`'s dtype and head layout, `seq` tokens long. */
export function emptyLike(t: KVTensor, seq: number): KVTensor {
  const n = t.heads * seq * t.headDim;
  return t.dtype === 'float16' ? { ...t, seq, data: new Uint16Array(n) } : { ...t, seq, data: new Float32Array(n) };
}

/** The tensor's values as f32 for the math: f32 data itself (no copy), f16 widened (exact). */
export function widenData(t: KVTensor): Float32Array {
  return t.dtype === 'float16' ? float16ArrayToFloat32(t.data) : t.data;
}

/** f32 values stored in `dtype`: f32 as is, f16 rounded once (nearest-even). */
export function narrowData(values: Float32Array, dtype: 'float16'): Uint16Array;
export function narrowData(values: Float32Array, dtype: KVDType): Float32Array | Uint16Array;
export function narrowData(values: Float32Array, dtype: KVDType): Float32Array | Uint16Array {
  return dtype === 'float16' ? float32ArrayToFloat16(values) : values;
}

/** A deep copy (the result owns its data). */
export function copyTensor<T extends KVTensor>(t: T): T {
  return { ...t, data: t.data.slice() };
}

/** Tokens [start, end) of every head as a new tensor of the same dtype (a copy). */
export function sliceSeq<T extends KVTensor>(t: T, start: number, end: number): T {
  const out = emptyLike(t, end - start) as T;
  const n = end - start;
  const src = t.data as Float32Array;
  for (let h = 0; h < t.heads; h++) {
    (out.data as Float32Array).set(src.subarray((h * t.seq + start) * t.headDim, (h * t.seq + end) * t.headDim), h * n * t.headDim);
  }
  return out;
}

/** The data of tokens [start, end): the tensor's own array when the range is the whole sequence, else a copy. */
export function seqRangeData<T extends KVTensor>(t: T, start: number, end: number): T['data'] {
  return start === 0 && end === t.seq ? t.data : sliceSeq(t, start, end).data;
}

/** A copy of `t` with tokens [start, end) replaced by `part` (`[heads, end - start, head_dim]`, `t`'s dtype). */
export function spliceSeq<T extends KVTensor>(t: T, part: T['data'], start: number, end: number): T {
  const n = end - start;
  if (part.length !== t.heads * n * t.headDim) throw new RangeError(`spliceSeq: ${part.length} values for ${t.heads}×${n}×${t.headDim}`);
  if ((part instanceof Uint16Array) !== (
    t.data instanceof Uint16Array)) throw new TypeError(`spliceSeq: a ${part.constructor.name} part into ${kvDTypeOf(t)} KV`);
  if (start === 0 && end === t.seq) return { ...t, data: part.slice() };
  const data = t.data.slice() as Float32Array;
  const p = part as Float32Array;
  for (let h = 0; h < t.heads; h++) data.set(p.subarray(h * n * t.headDim, (h + 1) * n * t.headDim), (h * t.seq + start) * t.headDim);
  return { ...t, data };
}

/** Tokens [start, end) of every layer of a cache (copies). */
export function sliceCache(cache: KVCache, start: number, end: number): KVCache {
  return cache.map((l) => ({ key: sliceSeq(l.key, start, end), value: sliceSeq(l.value, start, end) }));
}

/** `a` followed by `b` along the sequence, layer by layer (same heads, head dims and dtype). */
export function concatCache(a: KVCache, b: KVCache): KVCache {
  if (a.length !== b.length) throw new RangeError(`concatCache: ${a.length} vs ${b.length} layers`);
  const cat = (x: KVTensor, y: KVTensor): KVTensor => {
    if (x.heads !== y.heads || x.headDim !== y.headDim) throw new RangeError('concatCache: heads or head dims differ');
    if (kvDTypeOf(x) !== kvDTypeOf(y)) throw new TypeError(`concatCache: ${kvDTypeOf(x)} followed by ${kvDTypeOf(y)} KV`);
    const out = emptyLike(x, x.seq + y.seq);
    const seq = out.seq;
    // Same element type on both sides (checked above): the typed-array copies keep the stored bits.
    const data = out.data as Float32Array, xd = x.data as Float32Array, yd = y.data as Float32Array;
    for (let h = 0; h < x.heads; h++) {
      data.set(xd.subarray(h * x.seq * x.headDim, (h + 1) * x.seq * x.headDim), h * seq * x.headDim);
      data.set(yd.subarray(h * y.seq * y.headDim, (h + 1) * y.seq * y.headDim), (h * seq + x.seq) * x.headDim);
    }
    return out;
  };
  return a.map((l, i) => ({ key: cat(l.key, b[i].key), value: cat(l.value, b[i].value) }));
}
