/** KV-cache comparison and random-cache helpers for the WebGPU fuser tests. */
import type { KVCache } from '../../src/types';
import type { GpuKV } from '../../src/fuser/webgpu';
import { upload } from './dawn';
import { randomArray } from './cpu-math';

/** The shared NaN-poisoned cache comparison (test/util/allclose.ts) under the name the kernel tests use. */
export { maxAbsDiffKV as cacheMaxDiff } from '../util/allclose';

export function randomCache(rand: () => number, layers: number, heads: number, seq: number, dim: number): KVCache {
  return Array.from({ length: layers }, () => ({
    key: { data: randomArray(rand, heads * seq * dim, 2), heads, seq, headDim: dim },
    value: { data: randomArray(rand, heads * seq * dim, 2), heads, seq, headDim: dim },
  }));
}

export const bitEqual = (a: ArrayBufferView, b: ArrayBufferView) =>
  a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength));


/** Uploads a CPU cache to fresh GPU buffers (one per layer and K/V), as ORT's gpu-buffer outputs would hold it. */
export function cacheToGpu(device: GPUDevice, cache: KVCache): GpuKV {
  return cache.map((l) => ({ key: upload(device, l.key.data), value: upload(device, l.value.data) }));
}
