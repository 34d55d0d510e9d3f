/**
 * Random f32 KV caches and their GPU upload, shared by the two WGSL fuser benchmarks (scripts/bench-fuser.mjs and
 * the GPU kit's bench.ts): the KV each benchmark fuses has the same shape and value range.
 */
import type { GpuKV } from '../../src/fuser/webgpu';
import type { KVCache, KVTensor, ModelKVDims } from '../../src/types';

/** One model's cache of `seq` tokens, values uniform in [−1, 1). */
export function randomCache(rand: () => number, dims: ModelKVDims, seq: number): KVCache {
  const n = dims.kvHeads * seq * dims.headDim;
  const t = (): KVTensor => ({
    data: Float32Array.from({ length: n }, () => rand() * 2 - 1), heads: dims.kvHeads, seq, headDim: dims.headDim,
  });
  return Array.from({ length: dims.numLayers }, () => ({ key: t(), value: t() }));
}

/** Uploads a float32 cache to fresh storage buffers, one per layer and K/V (the caller destroys them). */
export function cacheToGpu(device: GPUDevice, cache: KVCache): GpuKV {
  const upload = (t: KVTensor) => {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const b = device.createBuffer({ size: t.data.byteLength, usage, mappedAtCreation: true });
    new Float32Array(b.getMappedRange()).set(t.data as Float32Array);
    b.unmap();
    return b;
  };
  return cache.map((l) => ({ key: upload(l.key), value: upload(l.value) }));
}
