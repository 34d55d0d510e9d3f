/**
 * Zero-copy KV hand-off on one GPUDevice ('single' topology on WebGPU): the models' `present.*` outputs stay
 * GPU tensors (ORT gpu-buffer), the WebGPU fuser reads their GPUBuffers and writes fresh ones, which are
 * wrapped back into ORT tensors (`Tensor.fromGpuBuffer`) as the receiver's past KV. No GPU→CPU round trip.
 */
import { Tensor } from '@huggingface/transformers';
import type { Fuser, ModelInfo } from '../types';
import type { GpuKV } from '../fuser/webgpu';

export interface GpuFuser extends Fuser {
  fuseBuffers(receiver: GpuKV, sharer: GpuKV, seq: number, opts?: { start?: number; end?: number; signal?: AbortSignal }): Promise<GpuKV>;
}

type OrtTensorLike = { gpuBuffer?: GPUBuffer; location?: string; constructor: { fromGpuBuffer?: (b: GPUBuffer, o: { dataType: string; dims: number[]; dispose?: () => void }) => unknown } };
const ort = (t: Tensor) => (t as unknown as { ort_tensor: OrtTensorLike }).ort_tensor;

export function isGpuFuser(f: Fuser | null): f is GpuFuser {
  return !!f && f.backend === 'webgpu' && typeof (f as Partial<GpuFuser>).fuseBuffers === 'function';
}

/** True when every present.* output lives on the GPU (so its buffer can feed the fuser directly). */
export function presentOnGpu(present: Record<string, Tensor>, numLayers: number): boolean {
  for (let i = 0; i < numLayers; i++) {
    for (const w of ['key', 'value']) {
      const t = present[`present.${i}.${w}`];
      if (!t || ort(t).location !== 'gpu-buffer' || !ort(t).gpuBuffer) return false;
    }
  }
  return true;
}

export function presentToGpuKV(present: Record<string, Tensor>, numLayers: number): GpuKV {
  return Array.from({ length: numLayers }, (_, i) => ({
    key: ort(present[`present.${i}.key`]).gpuBuffer!,
    value: ort(present[`present.${i}.value`]).gpuBuffer!,
  }));
}

/** Wraps fused buffers as `present.*` tensors (the buffers are destroyed when the tensors are disposed). */
export function gpuKVToPresent(bufs: GpuKV, like: Tensor, info: ModelInfo, seq: number): Record<string, Tensor> {
  const fromGpuBuffer = ort(like).constructor.fromGpuBuffer;
  if (!fromGpuBuffer) throw new Error('this onnxruntime build has no Tensor.fromGpuBuffer');
  const out: Record<string, Tensor> = {};
  bufs.forEach((layer, i) => {
    for (const w of ['key', 'value'] as const) {
      const buf = layer[w];
      const t = fromGpuBuffer(buf, { dataType: 'float32', dims: [1, info.kvHeads, seq, info.headDim], dispose: () => buf.destroy() });
      out[`present.${i}.${w}`] = new Tensor(t as never);
    }
  });
  return out;
}
