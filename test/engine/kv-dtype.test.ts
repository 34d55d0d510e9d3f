/**
 * float16 KV plumbing without a model: present.* → KVCache in the outputs' dtype (Uint16Array bits, a Float16Array
 * viewed, never converted), past_key_values in the cache's dtype with a refused mismatch, f16 logits widened for
 * the last row only, token-range ops on f16, the bulk f16 conversions against the scalar ones, dtype checks of
 * the fuser inputs, and the dtype transformers.js is asked for.
 */
import { describe, expect, it } from 'vitest';
import { kvCacheToPast, lastLogitsRow, presentToKVCache, type TensorLike } from '../../src/kv/convert';
import { cacheDType, kvTensor, narrowData, sliceSeq, spliceSeq, widenData } from '../../src/kv/ops';
import { float16ArrayToFloat32, float16BitsToFloat32, float32ArrayToFloat16, float32ToFloat16Bits } from '../../src/util/half';
import { checkCacheShapes } from '../../src/fuser/reference-checks';
import { randomFuserConfig } from '../../src/fuser/random-weights';
import { requestedDType } from '../../src/models/causal-lm';
import { InvalidInputError, ShapeMismatchError } from '../../src/errors';
import type { KVCache } from '../../src/types';

const half = (xs: number[]) => Uint16Array.from(xs, float32ToFloat16Bits);
const t16 = (data: Uint16Array, dims: number[], type = 'float16'): TensorLike => ({ type, dims, data });

describe('f16 KV conversion', () => {
  it('present.* float16 → Uint16 KV bits (copied), float32 → Float32; one dtype per model', async () => {
    const bits = half([1, 2, 3, 4, 5, 6]);
    const out = { 'present.0.key': t16(bits, [1, 1, 3, 2]), 'present.0.value': t16(bits, [1, 1, 3, 2]) };
    const kv = await presentToKVCache(out, 1);
    expect(kv[0].key).toMatchObject({ dtype: 'float16', heads: 1, seq: 3, headDim: 2 });
    expect(kv[0].key.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(kv[0].key.data)).toEqual(Array.from(bits));
    expect(kv[0].key.data.buffer).not.toBe(bits.buffer);
    const mixed = { ...out, 'present.0.value': { type: 'float32', dims: [1, 1, 3, 2], data: new Float32Array(6) } };
    await expect(presentToKVCache(mixed, 1)).rejects.toThrow(/one KV dtype per model/);
    await expect(presentToKVCache({ ...out, 'present.0.key': t16(bits, [1, 1, 3, 2], 'bfloat16') }, 1)).rejects.toBeInstanceOf(
      ShapeMismatchError);
  });

  it('a Float16Array from ORT (Chromium) is viewed as its bits, not converted', async () => {
    const bits = half([0.5, -2, 65504, 2 ** -24]);
    // A stand-in Float16Array class: the conversion must go by the bytes, whatever the element values look like.
    class Float16Array extends Uint8Array {}
    const g = globalThis as { Float16Array?: unknown };
    const had = g.Float16Array;
    g.Float16Array = Float16Array;
    try {
      const f16 = new Float16Array(bits.buffer) as unknown as { length: number };
      Object.defineProperty(f16, 'length', { value: bits.length });
      const kv = await presentToKVCache({ 'present.0.key': t16(f16 as never, [1, 1, 2, 2]),
        'present.0.value': t16(bits, [1, 1, 2, 2]) }, 1);
      expect(Array.from(kv[0].key.data)).toEqual(Array.from(bits));
    } finally {
      g.Float16Array = had;
    }
  });

  it('past_key_values keep the cache dtype; a cache of another dtype than the model takes is refused', () => {
    const cache: KVCache = [{ key: kvTensor(half([1, 2]), 1, 1, 2), value: kvTensor(half([3, 4]), 1, 1, 2) }];
    const past = kvCacheToPast(cache, (type, data, dims) => ({ type, data, dims }), 'float16');
    expect(past['past_key_values.0.key'].type).toBe('float16');
    expect(past['past_key_values.0.key'].data).toBe(cache[0].key.data);
    expect(() => kvCacheToPast(cache, (type, data, dims) => ({ type, data, dims }), 'float32')).toThrow(ShapeMismatchError);
  });

  it('f16 logits: only the last row is widened, exactly', async () => {
    const rows = [[1, 2, 3], [4, 5, 6], [0.25, -7.5, 1024]];
    const got = await lastLogitsRow(t16(half(rows.flat()), [1, 3, 3]));
    expect(got).toBeInstanceOf(Float32Array);
    expect(Array.from(got)).toEqual(rows[2]);
    const f32 = await lastLogitsRow({ type: 'float32', dims: [1, 2, 2], data: Float32Array.of(1, 2, 3, 4) });
    expect(Array.from(f32)).toEqual([3, 4]);
    await expect(lastLogitsRow({ type: 'int8', dims: [1, 1, 2], data: new Int8Array(2) })).rejects.toBeInstanceOf(ShapeMismatchError);
  });

  it('slice and splice keep the f16 bits; widen/narrow round-trip exactly', () => {
    const t = kvTensor(half([0, 1, 2, 3, 4, 5, 6, 7]), 2, 2, 2);
    const s = sliceSeq(t, 1, 2);
    expect(s.dtype).toBe('float16');
    expect(Array.from(widenData(s))).toEqual([2, 3, 6, 7]);
    const sp = spliceSeq(t, half([9, 9, 8, 8]), 0, 1);
    expect(Array.from(widenData(sp))).toEqual([9, 9, 2, 3, 8, 8, 6, 7]);
    expect(() => spliceSeq(t, new Float32Array(4) as never, 0, 1)).toThrow(TypeError);
    expect(Array.from(narrowData(widenData(t), 'float16'))).toEqual(Array.from(t.data));
  });

  it('bulk f16 conversions equal the scalar ones (ties to even, subnormals, overflow, NaN)', () => {
    const vals = Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -26, 2 ** -24 * 1.5, 65519, 65520, -0,
      Infinity, -1e9, NaN, 0.1, -1 / 3]);
    const rand = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 9) - 6));
    for (const xs of [vals, rand]) {
      const bits = float32ArrayToFloat16(xs);
      expect(Array.from(bits)).toEqual(Array.from(xs, float32ToFloat16Bits));
      expect(Array.from(float16ArrayToFloat32(bits))).toEqual(Array.from(bits, float16BitsToFloat32));
    }
  });
});

describe('f16 KV at the fuser boundary', () => {
  const cfg = randomFuserConfig();
  const cache = (dtype: 'float32' | 'float16', layers: number, heads: number, dim: number): KVCache =>
    Array.from({ length: layers }, () => {
      const t = () => (dtype === 'float16' ? kvTensor(new Uint16Array(heads * 2 * dim), heads, 2, dim)
        : kvTensor(new Float32Array(heads * 2 * dim), heads, 2, dim));
      return { key: t(), value: t() };
    });
  const r = cache('float16', cfg.receiver.numLayers, cfg.receiver.kvHeads, cfg.receiver.headDim);
  const s = cache('float32', cfg.sharer.numLayers, cfg.sharer.kvHeads, cfg.sharer.headDim);

  it('accepts f16 and mixed caches, refuses a dtype that does not match its data or a cache that mixes dtypes', () => {
    expect(checkCacheShapes(cfg, r, s)).toBe(2);
    expect(cacheDType(r)).toBe('float16');
    const lying = r.map((l, i) => (i === 1 ? { ...l, key: { ...l.key, data: new Float32Array(l.key.data.length) } as never } : l));
    expect(() => checkCacheShapes(cfg, lying, s)).toThrow(/must be a Uint16Array \(float16 KV\)/);
    const mixed = r.map((l, i) => (i === 2 ? { ...l, value: kvTensor(new Float32Array(l.value.data.length), l.value.heads, 2,
      l.value.headDim) } : l));
    expect(() => checkCacheShapes(cfg, mixed, s)).toThrow(InvalidInputError);
    expect(() => checkCacheShapes(cfg, mixed, s)).toThrow(/one dtype per cache/);
  });
});

describe('model dtype choice (what transformers.js is asked for)', () => {
  it("ModelSource.dtype first, else the config's transformers.js_config.dtype (left to transformers.js), else fp32", () => {
    const cfg = { 'transformers.js_config': { dtype: 'q4f16' } };
    expect(requestedDType({ dtype: 'fp16' }, cfg, 'cpu')).toBe('fp16');
    expect(requestedDType({}, cfg, 'webgpu')).toBeUndefined();
    expect(requestedDType({}, { 'transformers.js_config': { device_config: { webgpu: { dtype: 'fp16' } } } }, 'webgpu')).toBeUndefined();
    expect(requestedDType({}, { 'transformers.js_config': { device_config: { webgpu: { dtype: 'fp16' } } } }, 'wasm')).toBe('fp32');
    expect(requestedDType({}, {}, 'wasm')).toBe('fp32');
  });
});

describe('GPU-resident f16 KV hand-off (single topology; tensors built with onnxruntime Tensor.fromGpuBuffer)', () => {
  it('present.* of a float16 model are read as f16 GPU KV and fused buffers are wrapped back as float16', async () => {
    const ortNode = await import('onnxruntime-node');
    const { Tensor } = await import('@huggingface/transformers');
    const { gpuKVToPresent, presentDType, presentOnGpu, presentToGpuKV } = await import('../../src/hosts/gpu-kv');
    const destroyed: string[] = [];
    const buffer = (name: string) => ({ label: name, size: 64, usage: 0, destroy: () => destroyed.push(name) }) as unknown as GPUBuffer;
    const gpuTensor = (name: string, dataType: 'float16' | 'float32') =>
      new Tensor(ortNode.Tensor.fromGpuBuffer(buffer(name), { dataType, dims: [1, 2, 3, 4] } as never) as never);
    const present = { 'present.0.key': gpuTensor('k', 'float16'), 'present.0.value': gpuTensor('v', 'float16') };
    expect(presentOnGpu(present, 1)).toBe(true);
    expect(presentDType(present)).toBe('float16');
    expect(presentDType({ 'present.0.key': gpuTensor('k32', 'float32') })).toBe('float32');
    const bufs = presentToGpuKV(present, 1);
    expect((bufs[0].key as unknown as { label: string }).label).toBe('k');
    const fused = [{ key: buffer('fk'), value: buffer('fv') }];
    const info = { id: 'm', numLayers: 1, kvHeads: 2, headDim: 4, vocabSize: 8, maxPositions: 16, eosIds: [], padId: null, unkId: null };
    const wrapped = gpuKVToPresent(fused, present['present.0.key'], info, 3, 'float16');
    expect(wrapped['present.0.key'].type).toBe('float16');
    expect(wrapped['present.0.value'].dims).toEqual([1, 2, 3, 4]);
    wrapped['present.0.key'].dispose();
    expect(destroyed).toEqual(['fk']);
  });
});
