/**
 * The KV cache as every module sees it: per receiver/sharer layer, K and V tensors in
 * `[kv_heads, seq, head_dim]` row-major layout, batch 1, keys post-RoPE (exactly what HF/ONNX `present.*` hold).
 * A tensor keeps the model's own storage dtype: float32 (`Float32Array`) or float16 (`Uint16Array` of IEEE
 * half bits, what fp16 / q4f16 exports take and return). Nothing widens f16 KV on the way; the fuser backends
 * widen inside and hand back the receiver's dtype.
 */

/** Storage dtype of a KV tensor (ONNX / ORT tensor type names). */
export type KVDType = 'float32' | 'float16';

interface KVShape {
  heads: number;
  seq: number;
  headDim: number;
}

/** float32 KV; `dtype` may be omitted (float32 is the default everywhere). */
export interface KVTensorF32 extends KVShape {
  dtype?: 'float32';
  data: Float32Array;
}

/** float16 KV: IEEE half bits, one Uint16 per value (a Float16Array from ORT is viewed as its bits). */
export interface KVTensorF16 extends KVShape {
  dtype: 'float16';
  data: Uint16Array;
}

export type KVTensor = KVTensorF32 | KVTensorF16;

export interface LayerKV {
  key: KVTensor;
  value: KVTensor;
}

/** One entry per model layer; every tensor of one cache has the same dtype. */
export type KVCache = LayerKV[];
