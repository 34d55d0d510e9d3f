/** Test helpers: a cache in float16 (each value rounded once, nearest-even) and the f16 ulp unit. */
import type { KVCache, KVTensor } from '../../src/types';
import { narrowData, widenData } from '../../src/kv/ops';

export function toF16Tensor(t: KVTensor): KVTensor {
  return { dtype: 'float16', data: narrowData(widenData(t), 'float16'), heads: t.heads, seq: t.seq, headDim: t.headDim };
}

export function toF16Cache(c: KVCache): KVCache {
  return c.map((l) => ({ key: toF16Tensor(l.key), value: toF16Tensor(l.value) }));
}

/** The cache widened to float32 (exact). */
export function toF32Cache(c: KVCache): KVCache {
  const w = (t: KVTensor): KVTensor => ({ dtype: 'float32', data: widenData(t).slice(), heads: t.heads, seq: t.seq, headDim: t.headDim });
  return c.map((l) => ({ key: w(l.key), value: w(l.value) }));
}
