/**
 * The KV cache as every module sees it: per receiver/sharer layer, K and V tensors in
 * `[kv_heads, seq, head_dim]` row-major layout, batch 1, keys post-RoPE (exactly what HF/ONNX `present.*` hold).
 */

export interface KVTensor {
  data: Float32Array;
  heads: number;
  seq: number;
  headDim: number;
}

export interface LayerKV {
  key: KVTensor;
  value: KVTensor;
}

/** One entry per model layer. */
export type KVCache = LayerKV[];

