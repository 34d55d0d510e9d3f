/**
 * Conversions between our KVCache (per layer K/V `[kv_heads, seq, head_dim]` Float32Array, batch 1) and the
 * transformers.js / ORT tensors named `present.{i}.key|value` (outputs) and `past_key_values.{i}.key|value`
 * (inputs), dims `[1, kv_heads, seq, head_dim]`. With batch 1 the two layouts are the same bytes, so a
 * conversion is a view or one copy; GPU-resident tensors are downloaded with `getData()`.
 */
import { ShapeMismatchError } from '../errors';
import type { KVCache, KVTensor } from '../types';

/** The subset of a transformers.js Tensor we rely on (kept structural so tests can pass plain objects). */
export interface TensorLike {
  type: string;
  dims: readonly number[];
  data: unknown;
  location?: string;
  ort_tensor?: { getData?: () => Promise<unknown> };
  dispose?: () => void;
}

export type TensorFactory<T> = (type: 'float32', data: Float32Array, dims: number[]) => T;

async function readFloat32(t: TensorLike, name: string): Promise<Float32Array> {
  if (t.type !== 'float32') throw new ShapeMismatchError(`${name} has dtype ${t.type}, expected float32`, { tensor: name, actual: t.type });
  // On WebGPU, present.* stay on the GPU: `data` is unusable there, download through the ORT tensor.
  const raw = t.location === 'gpu-buffer' && t.ort_tensor?.getData ? await t.ort_tensor.getData() : t.data;
  if (!(raw instanceof Float32Array)) throw new ShapeMismatchError(`${name} data is not a Float32Array`, { tensor: name });
  return raw;
}

function toKVTensor(data: Float32Array, dims: readonly number[], name: string, copy: boolean): KVTensor {
  if (dims.length !== 4 || dims[0] !== 1) {
    throw new ShapeMismatchError(`${name} has dims [${dims.join(', ')}], expected [1, kv_heads, seq, head_dim]`, { tensor: name, actual: dims });
  }
  const [, heads, seq, headDim] = dims;
  if (data.length !== heads * seq * headDim) throw new ShapeMismatchError(`${name} holds ${data.length} values for dims [${dims.join(', ')}]`, { tensor: name });
  return { data: copy ? new Float32Array(data) : data, heads, seq, headDim };
}

/**
 * Reads `present.{i}.key|value` for every layer into a KVCache. `copy` (default true) detaches the result
 * from ORT-owned memory so it can be transferred to another worker or outlive the outputs.
 */
export async function presentToKVCache(outputs: Record<string, TensorLike>, numLayers: number, copy = true): Promise<KVCache> {
  const cache: KVCache = [];
  for (let i = 0; i < numLayers; i++) {
    const kName = `present.${i}.key`, vName = `present.${i}.value`;
    const k = outputs[kName], v = outputs[vName];
    if (!k || !v) throw new ShapeMismatchError(`model output ${k ? vName : kName} is missing`, { tensor: k ? vName : kName });
    cache.push({
      key: toKVTensor(await readFloat32(k, kName), k.dims, kName, copy),
      value: toKVTensor(await readFloat32(v, vName), v.dims, vName, copy),
    });
  }
  return cache;
}

/** Builds `past_key_values.{i}.key|value` tensors from a KVCache (no copy: the tensors view the cache's arrays). */
export function kvCacheToPast<T>(cache: KVCache, make: TensorFactory<T>): Record<string, T> {
  const past: Record<string, T> = {};
  cache.forEach((layer, i) => {
    for (const which of ['key', 'value'] as const) {
      const t = layer[which];
      past[`past_key_values.${i}.${which}`] = make('float32', t.data, [1, t.heads, t.seq, t.headDim]);
    }
  });
  return past;
}

/** Renames `present.*` outputs to `past_key_values.*` inputs for the next step (no copy). */
export function presentToPast<T>(outputs: Record<string, T>, numLayers: number): Record<string, T> {
  const past: Record<string, T> = {};
  for (let i = 0; i < numLayers; i++) {
    for (const which of ['key', 'value']) {
      const t = outputs[`present.${i}.${which}`];
      if (!t) throw new ShapeMismatchError(`model output present.${i}.${which} is missing`, { tensor: `present.${i}.${which}` });
      past[`past_key_values.${i}.${which}`] = t;
    }
  }
  return past;
}

/** Every ArrayBuffer a cache holds (for postMessage transfer lists). Buffers are listed once. */
export function kvTransferables(cache: KVCache): ArrayBuffer[] {
  const set = new Set<ArrayBuffer>();
  for (const l of cache) {
    set.add(l.key.data.buffer as ArrayBuffer);
    set.add(l.value.data.buffer as ArrayBuffer);
  }
  return [...set];
}

export function kvSeqLength(cache: KVCache): number {
  return cache.length ? cache[0].key.seq : 0;
}

/** Bytes a cache's tensors hold now (its data arrays), for transfer accounting and memory checks. */
export function kvCacheByteLength(cache: KVCache): number {
  return cache.reduce((a, l) => a + l.key.data.byteLength + l.value.data.byteLength, 0);
}
