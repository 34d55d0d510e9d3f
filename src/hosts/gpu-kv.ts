/**
 * Zero-copy KV hand-off on one GPUDevice ('single' topology on WebGPU): the models' `present.*` outputs stay
 * GPU tensors (ORT gpu-buffer), the WebGPU fuser reads their GPUBuffers and writes fresh ones, which are
 * wrapped back into ORT tensors (`Tensor.fromGpuBuffer`) as the receiver's past KV. No GPU→CPU round trip.
 * float16 KV (fp16 / q4f16 models) stays f16 on the GPU: the fuser reads and writes f16 buffers and the fused
 * buffers are wrapped with dataType float16.
 */
import { Tensor } from '@huggingface/transformers';
import type { Fuser, KVDType, ModelInfo } from '../types';
import type { GpuKV } from '../fuser/webgpu';
import { isKVDType } from '../kv/convert';

export interface GpuFuser extends Fuser {
  fuseBuffers(
    receiver: GpuKV, sharer: GpuKV, seq: number,
    opts?: { start?: number; end?: number; signal?: AbortSignal; receiverDType?: KVDType; sharerDType?: KVDType },
  ): Promise<GpuKV>;
}

type OrtTensorLike = { gpuBuffer?: GPUBuffer; location?: string; type?: string; constructor: {
  fromGpuBuffer?: (b: GPUBuffer, o: { dataType: string; dims: number[]; dispose?: () => void }) => unknown } };
const ort = (t: Tensor) => (t as unknown as { ort_tensor: OrtTensorLike }).ort_tensor;

export function isGpuFuser(f: Fuser | null): f is GpuFuser {
  return !!f && f.backend === 'webgpu' && typeof (f as Partial<GpuFuser>).fuseBuffers === 'function';
}

/** The KV dtype of GPU-resident present.* tensors (their ORT tensor type). */
export function presentDType(present: Record<string, Tensor>): KVDType {
  const t = present['present.0.key'];
  const type = t ? (ort(t).type ?? (t as unknown as { type?: string }).type) : 'float32';
  if (!type || !isKVDType(type)) throw new Error(`present.0.key has dtype ${type}; only float32 and float16 KV are fused on the GPU`);
  return type;
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

/** Wraps fused buffers (of `dtype`) as `present.*` tensors (the buffers are destroyed when the tensors are disposed). */
export function gpuKVToPresent(bufs: GpuKV, like: Tensor, info: ModelInfo, seq: number, dtype: KVDType): Record<string, Tensor> {
  const fromGpuBuffer = ort(like).constructor.fromGpuBuffer;
  if (!fromGpuBuffer) throw new Error('this onnxruntime build has no Tensor.fromGpuBuffer');
  const out: Record<string, Tensor> = {};
  bufs.forEach((layer, i) => {
    for (const w of ['key', 'value'] as const) {
      const buf = layer[w];
      const t = fromGpuBuffer(buf, { dataType: dtype, dims: [1, info.kvHeads, seq, info.headDim], dispose: () => buf.destroy() });
      out[`present.${i}.${w}`] = new Tensor(t as never);
    }
  });
  return out;
}
