/**
 * Input checks for the WebGPU fuser, run before any GPU work so a bad call leaves the fuser usable.
 * Dims that do not fit the fuser or each other → ShapeMismatchError; empty or malformed arguments →
 * InvalidInputError. Messages name the layer, path and field.
 */
import { FuserFormatError, InvalidInputError, ShapeMismatchError } from '../../errors';
import type { KVCache } from '../../kv/types';
import { checkCacheShapes, checkPathParams } from '../reference-checks';
import type { FuserConfig, FuserWeights, ModelKVDims } from '../types';

export interface GpuLayerKV {
  key: GPUBuffer;
  value: GPUBuffer;
}

/**
 * A KV cache resident on the GPU: one entry per model layer; each buffer holds f32 little-endian values in
 * `[kv_heads, seq, head_dim]` row-major order starting at byte 0 (byte offset of element (h, n, d) is
 * `4·((h·seq + n)·head_dim + d)`); it may be larger than that (pooled allocations), never smaller.
 */
export type GpuKV = GpuLayerKV[];

const PATHS = ['key', 'value'] as const;

export function validateWeights(w: FuserWeights): void {
  const c = w.config;
  if (w.layers.length !== c.receiver.numLayers)
    throw new FuserFormatError(`fuser has ${w.layers.length} layers, config.receiver.numLayers is ${c.receiver.numLayers}`, { field: 'layers' });
  if (c.layerMap.length !== c.receiver.numLayers || c.layerMap.some((j) => !Number.isInteger(j) || j < 0 || j >= c.sharer.numLayers))
    throw new FuserFormatError(`config.layerMap must list ${c.receiver.numLayers} sharer layers in 0..${c.sharer.numLayers - 1}`, { field: 'layerMap' });
  w.layers.forEach((layer, l) => {
    for (const p of PATHS) {
      const path = layer[p];
      checkPathParams(path, c, `layers[${l}].${p}`);
      for (const lin of ['in', 'scalarHead', 'projOut'] as const)
        if (!path[lin].bias) throw new FuserFormatError(`layer ${l} ${p} path: ${lin} has no bias`, { tensor: `${l}.${p}_${lin}.bias` });
      if (path.mlp1.length < 1 || path.scalarMlp2.length < 1)
        throw new FuserFormatError(`layer ${l} ${p} path: mlp1 and scalar_mlp2 need at least one block`, { field: `layers.${l}.${p}` });
    }
  });
}

export function validateSeqRange(seq: number, start = 0, end = seq): { start: number; end: number } {
  if (!Number.isInteger(seq) || seq <= 0) throw new InvalidInputError(`seq must be a positive integer, got ${seq}`, { field: 'seq', actual: seq });
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > seq || start > end)
    throw new InvalidInputError(`fuse range [${start}, ${end}) must satisfy 0 ≤ start ≤ end ≤ seq (${seq})`, { field: 'start/end', actual: [start, end] });
  return { start, end };
}

function checkLayerCount(what: string, n: number, dims: ModelKVDims): void {
  if (n !== dims.numLayers)
    throw new ShapeMismatchError(`${what} KV has ${n} layers, the fuser expects ${dims.numLayers}`, { field: `${what}.length`, expected: dims.numLayers, actual: n });
}

/** Checks a CPU KV cache (same rules and errors as the CPU reference); returns its common seq. */
export function validateKVCaches(cfg: FuserConfig, receiver: KVCache, sharer: KVCache): number {
  return checkCacheShapes(cfg, receiver, sharer);
}

/** Checks GPU KV buffers against the fuser dims and `seq`. */
export function validateGpuKV(cfg: FuserConfig, receiver: GpuKV, sharer: GpuKV, seq: number): void {
  if (!Array.isArray(receiver) || !Array.isArray(sharer)) throw new InvalidInputError('receiver and sharer GPU KV must be arrays of layers', { field: 'kv' });
  validateSeqRange(seq);
  checkLayerCount('receiver', receiver.length, cfg.receiver);
  checkLayerCount('sharer', sharer.length, cfg.sharer);
  for (const [what, cache, dims] of [['receiver', receiver, cfg.receiver], ['sharer', sharer, cfg.sharer]] as const) {
    const need = dims.kvHeads * seq * dims.headDim * 4;
    cache.forEach((layer, l) => {
      for (const p of PATHS) {
        const b = layer?.[p];
        const name = `${what}[${l}].${p}`;
        if (!b || typeof b.size !== 'number') throw new InvalidInputError(`${name} must be a GPUBuffer`, { tensor: name });
        if (b.size < need)
          throw new ShapeMismatchError(`${name} has ${b.size} bytes, [${dims.kvHeads}, ${seq}, ${dims.headDim}] f32 needs ${need}`, { tensor: name, expected: need, actual: b.size });
        if ((b.usage & GPUBufferUsage.STORAGE) === 0 || (b.usage & GPUBufferUsage.COPY_SRC) === 0)
          throw new InvalidInputError(`${name} needs STORAGE and COPY_SRC usage`, { tensor: name, actual: b.usage });
      }
    });
  }
}
