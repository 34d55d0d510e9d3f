/**
 * Input checks for the WebGPU fuser, run before any GPU work so a bad call leaves the fuser usable.
 * Dims that do not fit the fuser or each other → ShapeMismatchError; empty or malformed arguments →
 * InvalidInputError. Messages name the layer, path and field. Also the creation options' dtype checks.
 */
import { InvalidInputError, ShapeMismatchError } from '../../errors';
import type { FuserConfig, FuserWeights, KVDType, ModelKVDims } from '../../types';
import { kvElementBytes } from '../../kv/ops';
import { PATHS } from '../shapes';

export interface GpuLayerKV {
  key: GPUBuffer;
  value: GPUBuffer;
}

/**
 * A KV cache resident on the GPU: one entry per model layer; each buffer holds little-endian values of the
 * cache's dtype (f32, or f16 for fp16 models: `fuseBuffers` takes the dtypes as options) in
 * `[kv_heads, seq, head_dim]` row-major order starting at byte 0 (byte offset of element (h, n, d) is
 * `bytes·((h·seq + n)·head_dim + d)`), at least that size rounded up to whole 4-byte words (ORT and our uploads
 * allocate in 16-byte steps); it may be larger (pooled allocations), never smaller.
 */
export type GpuKV = GpuLayerKV[];

export function validateSeqRange(seq: number, start = 0, end = seq): { start: number; end: number } {
  if (!Number.isInteger(seq) || seq <= 0) throw new InvalidInputError(`seq must be a positive integer, got ${seq}`,
    { field: 'seq', actual: seq });
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > seq || start > end)
    throw new InvalidInputError(`fuse range [${start}, ${end}) must satisfy 0 ≤ start ≤ end ≤ seq (${seq})`,
      { field: 'start/end', actual: [start, end] });
  return { start, end };
}

function checkLayerCount(what: string, n: number, dims: ModelKVDims): void {
  if (n !== dims.numLayers)
    throw new ShapeMismatchError(`${what} KV has ${n} layers, the fuser expects ${dims.numLayers}`,
      { field: `${what}.length`, expected: dims.numLayers, actual: n });
}

/** Checks GPU KV buffers against the fuser dims, `seq` and their dtypes. */
export function validateGpuKV(cfg: FuserConfig, receiver: GpuKV, sharer: GpuKV, seq: number,
  kv: { receiver: KVDType; sharer: KVDType } = { receiver: 'float32', sharer: 'float32' }): void {
  for (const role of ['receiver', 'sharer'] as const)
    if (kv[role] !== 'float32' && kv[
      role] !== 'float16') throw new InvalidInputError(`${role}DType must be 'float32' or 'float16', got ${String(kv[role])}`,
      { field: `${role}DType` });
  if (!Array.isArray(receiver) || !Array.isArray(sharer)) throw new InvalidInputError('receiver and sharer GPU KV must be arrays of layers',
    { field: 'kv' });
  validateSeqRange(seq);
  checkLayerCount('receiver', receiver.length, cfg.receiver);
  checkLayerCount('sharer', sharer.length, cfg.sharer);
  for (const [what, cache, dims] of [['receiver', receiver, cfg.receiver], ['sharer', sharer, cfg.sharer]] as const) {
    const need = Math.ceil((dims.kvHeads * seq * dims.headDim * kvElementBytes(kv[what])) / 4) * 4;
    cache.forEach((layer, l) => {
      for (const p of PATHS) {
        const b = layer?.[p];
        const name = `${what}[${l}].${p}`;
        if (!b || typeof b.size !== 'number') throw new InvalidInputError(`${name} must be a GPUBuffer`, { tensor: name });
        if (b.size < need)
          throw new ShapeMismatchError(`${name} has ${b.size} bytes, [${dims.kvHeads}, ${seq}, ${dims.headDim}] ${kv[what]} needs ${need}`,
            { tensor: name, expected: need, actual: b.size });
        if ((b.usage & GPUBufferUsage.STORAGE) === 0 || (b.usage & GPUBufferUsage.COPY_SRC) === 0)
          throw new InvalidInputError(`${name} needs STORAGE and COPY_SRC usage`, { tensor: name, actual: b.usage });
      }
    });
  }
}

/**
 * Checks `maxChunkTokens`, `weightDType` and its agreement with `dtype`; returns the float weightDType, which is
 * the kernel dtype (weights and activations share it), or undefined.
 */
export function checkDTypeOptions(o: { maxChunkTokens?: number; weightDType?: unknown; dtype?: string }): 'f32' | 'f16' | undefined {
  if (o.maxChunkTokens !== undefined && !(Number.isInteger(o.maxChunkTokens) && o.maxChunkTokens > 0))
    throw new InvalidInputError(`maxChunkTokens must be a positive integer, got ${o.maxChunkTokens}`, { field: 'maxChunkTokens' });
  const wd = o.weightDType;
  if (wd !== undefined && wd !== 'int8' && wd !== 'f32' && wd !== 'f16')
    throw new InvalidInputError(`weightDType must be 'int8', 'f32' or 'f16', got ${String(wd)}`, { field: 'weightDType' });
  const floatWd = wd === 'f32' || wd === 'f16' ? wd : undefined;
  if (floatWd && o.dtype && o.dtype !== floatWd)
    throw new InvalidInputError(`weightDType '${floatWd}' conflicts with dtype '${o.dtype}' (float weights use the kernel dtype)`,
      { field: 'weightDType' });
  return floatWd;
}

/** True when every Linear of every path carries int8 data (what the loader produces for an int8 fuser). */
export function allQuantized(w: FuserWeights): boolean {
  return w.layers.every((layer) =>
    PATHS.every((p) => {
      const path = layer[p];
      const blocks = [...path.mlp1, ...path.scalarMlp2, ...path.projMlp2];
      return [path.in, path.scalarHead, path.projOut, ...blocks.flatMap((b) => [b.w1, b.w2])].every((l) => l.quant !== undefined);
    }),
  );
}
