/**
 * Conversions between our KVCache (per layer K/V `[kv_heads, seq, head_dim]`, batch 1, float32 or float16 bits)
 * and the transformers.js / ORT tensors named `present.{i}.key|value` (outputs) and `past_key_values.{i}.key|value`
 * (inputs), dims `[1, kv_heads, seq, head_dim]`. With batch 1 the two layouts are the same bytes, so a
 * conversion is a view or one copy, always in the tensor's own dtype (f16 KV stays 2 bytes per value); GPU-resident
 * tensors are downloaded with `getData()`.
 */
import { ShapeMismatchError } from '../errors';
import type { KVCache, KVDType, KVTensor } from '../types';
import { float16ArrayToFloat32 } from '../util/half';
import { cacheDType, kvDTypeOf } from './ops';

/** The subset of a transformers.js Tensor we rely on (kept structural so tests can pass plain objects). */
export interface TensorLike {
  type: string;
  dims: readonly number[];
  data: unknown;
  location?: string;
  ort_tensor?: { getData?: () => Promise<unknown> };
  dispose?: () => void;
}

export type TensorFactory<T> = (type: KVDType, data: Float32Array | Uint16Array, dims: number[]) => T;

export const isKVDType = (t: string): t is KVDType => t === 'float32' || t === 'float16';

/** The tensor's data (downloaded when GPU-resident: `data` is unusable there). */
async function tensorData(t: TensorLike): Promise<unknown> {
  return t.location === 'gpu-buffer' && t.ort_tensor?.getData ? t.ort_tensor.getData() : t.data;
}

/**
 * Half bits of float16 data: ORT gives a Uint16Array, or a Float16Array where the JS engine has one (Chromium):
 * that one is viewed as its bits, never converted.
 */
export function halfBits(raw: unknown): Uint16Array | null {
  if (raw instanceof Uint16Array) return raw;
  const F16 = (globalThis as { Float16Array?: new (...a: never[]) => ArrayBufferView }).Float16Array;
  if (F16 && raw instanceof F16) {
    const v = raw as unknown as { buffer: ArrayBuffer; byteOffset: number; length: number };
    return new Uint16Array(v.buffer, v.byteOffset, v.length);
  }
  return null;
}

async function readKV(t: TensorLike, name: string): Promise<Float32Array | Uint16Array> {
  if (!isKVDType(t.type)) throw new ShapeMismatchError(`${name} has dtype ${t.type}, expected float32 or float16`,
    { tensor: name, actual: t.type });
  const raw = await tensorData(t);
  if (t.type === 'float32') {
    if (!(raw instanceof Float32Array)) throw new ShapeMismatchError(`${name} data is not a Float32Array`, { tensor: name });
    return raw;
  }
  const bits = halfBits(raw);
  if (!bits) throw new ShapeMismatchError(`${name} is float16 but its data is neither a Uint16Array nor a Float16Array`, { tensor: name });
  return bits;
}

function toKVTensor(data: Float32Array | Uint16Array, dims: readonly number[], name: string, copy: boolean): KVTensor {
  if (dims.length !== 4 || dims[0] !== 1) {
    throw new ShapeMismatchError(`${name} has dims [${dims.join(', ')}], expected [1, kv_heads, seq, head_dim]`,
      { tensor: name, actual: dims });
  }
  const [, heads, seq, headDim] = dims;
  if (data.length !== heads * seq * headDim) throw new ShapeMismatchError(`${name} holds ${data.length} values for dims [${dims.join(', ')}]`, { tensor: name });
  return data instanceof Uint16Array
    ? { dtype: 'float16', data: copy ? data.slice() : data, heads, seq, headDim }
    : { dtype: 'float32', data: copy ? data.slice() : data, heads, seq, headDim };
}

/**
 * Reads `present.{i}.key|value` for every layer into a KVCache in the outputs' own dtype. `copy` (default true)
 * detaches the result from ORT-owned memory so it can be transferred to another worker or outlive the outputs.
 */
export async function presentToKVCache(outputs: Record<string, TensorLike>, numLayers: number, copy = true): Promise<KVCache> {
  const cache: KVCache = [];
  let dtype: string | undefined;
  for (let i = 0; i < numLayers; i++) {
    const kName = `present.${i}.key`, vName = `present.${i}.value`;
    const k = outputs[kName], v = outputs[vName];
    if (!k || !v) throw new ShapeMismatchError(`model output ${k ? vName : kName} is missing`, { tensor: k ? vName : kName });
    for (const [t, n] of [[k, kName], [v, vName]] as const) {
      dtype ??= t.type;
      if (t.type !== dtype) throw new ShapeMismatchError(`${n} is ${t.type} but present.0.key is ${dtype}: one KV dtype per model`,
        { tensor: n, expected: dtype, actual: t.type });
    }
    cache.push({ key: toKVTensor(await readKV(k, kName), k.dims, kName, copy),
      value: toKVTensor(await readKV(v, vName), v.dims, vName, copy) });
  }
  return cache;
}

/**
 * Builds `past_key_values.{i}.key|value` tensors from a KVCache (no copy: the tensors view the cache's arrays).
 * `want` is the model's KV input dtype: a cache of another dtype is refused (ShapeMismatchError), never converted.
 */
export function kvCacheToPast<T>(cache: KVCache, make: TensorFactory<T>, want?: KVDType): Record<string, T> {
  const have = cacheDType(cache);
  if (want && cache.length && have !== want) {
    throw new ShapeMismatchError(`the KV cache is ${have} but the model takes ${want} past_key_values`,
      { field: 'past_key_values', expected: want, actual: have });
  }
  const past: Record<string, T> = {};
  cache.forEach((layer, i) => {
    for (const which of ['key', 'value'] as const) {
      const t = layer[which];
      past[`past_key_values.${i}.${which}`] = make(kvDTypeOf(t), t.data, [1, t.heads, t.seq, t.headDim]);
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

/**
 * The last row (`vocab` values) of a logits tensor as f32: the decode loop and sampler work in f32, so f16
 * logits are widened for one row only (never the whole `[n, vocab]` block).
 */
export async function lastLogitsRow(logits: TensorLike): Promise<Float32Array> {
  const vocab = logits.dims[logits.dims.length - 1];
  const raw = await tensorData(logits);
  if (logits.type === 'float32' && raw instanceof Float32Array) return raw.slice(raw.length - vocab);
  const bits = logits.type === 'float16' ? halfBits(raw) : null;
  if (!bits) throw new ShapeMismatchError(`logits have dtype ${logits.type}, expected float32 or float16`,
    { tensor: 'logits', actual: logits.type });
  return float16ArrayToFloat32(bits.subarray(bits.length - vocab));
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
