/**
 * Memory budget: estimates what a pair needs (model weights, fuser weights, sharer/receiver/fused KV, fuser
 * scratch) for a context length and dtypes, and refuses, before any download, a setup that cannot fit the
 * adapter's buffer limits or a caller's memory budget, saying what would fit instead.
 * WebGPU exposes no total-VRAM figure, so the total is checked only against a budget the caller supplies.
 */
import { MemoryBudgetError } from './errors';
import type { KVDType } from './types';
import { decoderParams, type ModelArch, type PairPreset } from './presets';
import { fuserGpuWeightBytes, type GpuWeightDType } from './fuser/weight-bytes';
import { pathTensorShapes, PATHS, type FuserDims } from './fuser/shapes';

export type ModelDType = 'fp32' | 'fp16' | 'q8' | 'q4' | 'q4f16';
export type FuserWeightDType = 'float32' | 'float16' | 'int8';
export type { KVDType };

/** Bytes per parameter, block-quantisation scales included (q8/q4 exports store a scale per 32-element block). */
const MODEL_BYTES: Record<ModelDType, number> = { fp32: 4, fp16: 2, q8: 1 + 4 / 32, q4: 0.5 + 4 / 32, q4f16: 0.5 + 2 / 32 };
/** The fuser's GPU weight layout per dtype (int8: packed weights + f32 per-channel scales, f32 vectors). */
const FUSER_GPU_DTYPE: Record<FuserWeightDType, GpuWeightDType> = { float32: 'f32', float16: 'f16', int8: 'int8' };
const KV_BYTES: Record<KVDType, number> = { float32: 4, float16: 2 };

export interface MemoryOptions {
  contextLength: number;
  modelDType?: ModelDType;
  fuserDType?: FuserWeightDType;
  kvDType?: KVDType;
  /** Tokens the fuser processes per chunk (bounds its scratch buffers). */
  fuserChunkTokens?: number;
}

export interface MemoryEstimate {
  contextLength: number;
  receiverWeightsBytes: number;
  sharerWeightsBytes: number;
  fuserWeightsBytes: number;
  receiverKVBytes: number;
  sharerKVBytes: number;
  fusedKVBytes: number;
  fuserScratchBytes: number;
  totalBytes: number;
  largestBuffer: { name: string; bytes: number };
}

export interface DeviceMemoryLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Optional total budget (bytes) for everything on the device. */
  budgetBytes?: number;
}

export function estimateKVBytes(a: ModelArch, tokens: number, dtype: KVDType): number {
  return a.numLayers * 2 * a.kvHeads * a.headDim * tokens * KV_BYTES[dtype];
}

export function estimateMemory(p: PairPreset, o: MemoryOptions): MemoryEstimate {
  const modelBytes = MODEL_BYTES[o.modelDType ?? 'fp32'];
  const kvType = o.kvDType ?? 'float32';
  const chunk = Math.min(o.fuserChunkTokens ?? 512, o.contextLength);
  const r = p.receiver.arch;
  const s = p.sharer.arch;
  const inDim = s.kvHeads * s.headDim;
  const outDim = r.kvHeads * r.headDim;
  // Fuser scratch: per chunk token, the concat input plus ~4 live hidden/intermediate activations (f32).
  const scratch = chunk * (inDim + outDim + 4 * Math.max(p.fuserHidden, p.fuserIntermediate) + outDim) * 4;
  const fuserDims = {
    receiver: { numLayers: r.numLayers, kvHeads: r.kvHeads, headDim: r.headDim },
    sharer: { numLayers: s.numLayers, kvHeads: s.kvHeads, headDim: s.headDim },
    hiddenDim: p.fuserHidden,
    intermediateDim: p.fuserIntermediate,
    numMlpLayers: p.fuserMlpLayers,
  };
  const fuserWeightsBytes = fuserGpuWeightBytes(fuserDims, FUSER_GPU_DTYPE[o.fuserDType ?? 'float16']).totalBytes;
  const layerFuserBytes = fuserWeightsBytes / r.numLayers;
  const est: Omit<MemoryEstimate, 'totalBytes' | 'largestBuffer'> = {
    contextLength: o.contextLength,
    receiverWeightsBytes: decoderParams(r) * modelBytes,
    sharerWeightsBytes: decoderParams(s) * modelBytes,
    fuserWeightsBytes,
    receiverKVBytes: estimateKVBytes(r, o.contextLength, kvType),
    sharerKVBytes: estimateKVBytes(s, o.contextLength, kvType),
    fusedKVBytes: estimateKVBytes(r, o.contextLength, kvType),
    fuserScratchBytes: scratch,
  };
  const buffers = [
    { name: `${p.receiver.id} embedding table`, bytes: r.vocabSize * r.hiddenSize * modelBytes },
    { name: `${p.sharer.id} embedding table`, bytes: s.vocabSize * s.hiddenSize * modelBytes },
    { name: 'fuser weights of one receiver layer', bytes: layerFuserBytes },
    { name: 'one receiver KV tensor', bytes: r.kvHeads * r.headDim * o.contextLength * KV_BYTES[kvType] },
  ];
  const largestBuffer = buffers.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const totalBytes =
    est.receiverWeightsBytes + est.sharerWeightsBytes + est.fuserWeightsBytes + est.receiverKVBytes + est.sharerKVBytes
      + est.fusedKVBytes + est.fuserScratchBytes;
  return { ...est, totalBytes, largestBuffer };
}

const MiB = 1024 * 1024;
const fmt = (b: number) => (b >= 1024 * MiB ? `${(b / 1024 / MiB).toFixed(2)} GiB` : `${(b / MiB).toFixed(1)} MiB`);

/** Largest context length whose estimate fits the limits (0 if even 1 token does not). */
export function maxContextThatFits(p: PairPreset, o: Omit<MemoryOptions, 'contextLength'>, limits: DeviceMemoryLimits): number {
  const fits = (n: number) => violations(estimateMemory(p, { ...o, contextLength: n }), limits).length === 0;
  if (!fits(1)) return 0;
  let lo = 1;
  let hi = Math.min(p.receiver.arch.maxContext, p.sharer.arch.maxContext);
  if (fits(hi)) return hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

function violations(e: MemoryEstimate, l: DeviceMemoryLimits): string[] {
  const v: string[] = [];
  const bufferLimit = Math.min(l.maxBufferSize, l.maxStorageBufferBindingSize);
  if (e.largestBuffer.bytes > bufferLimit) v.push(`${e.largestBuffer.name} needs ${fmt(e.largestBuffer.bytes)} in one buffer; the adapter allows ${fmt(bufferLimit)}`);
  if (l.budgetBytes !== undefined
    && e.totalBytes > l.budgetBytes) v.push(`the whole setup needs about ${fmt(e.totalBytes)}; the budget is ${fmt(l.budgetBytes)}`);
  return v;
}

/**
 * Throws MemoryBudgetError when the preset cannot fit; the message lists what does not fit and what would
 * (a shorter context, or smaller dtypes). Returns the estimate otherwise.
 */
export function checkMemoryBudget(p: PairPreset, o: MemoryOptions, limits: DeviceMemoryLimits): MemoryEstimate {
  const e = estimateMemory(p, o);
  const v = violations(e, limits);
  if (v.length === 0) return e;
  const suggestions: string[] = [];
  const ctx = maxContextThatFits(p, o, limits);
  if (ctx > 0) suggestions.push(`a context of at most ${ctx} tokens with these dtypes`);
  const smaller: [ModelDType, FuserWeightDType, KVDType] = ['q4f16', 'int8', 'float16'];
  const current = [o.modelDType ?? 'fp32', o.fuserDType ?? 'float16', o.kvDType ?? 'float32'];
  if (smaller.some((d, i) => d !== current[i])) {
    const o2 = { ...o, modelDType: smaller[0], fuserDType: smaller[1], kvDType: smaller[2] };
    if (violations(estimateMemory(p, o2),
      limits).length === 0) suggestions.push(`models ${smaller[0]}, fuser ${smaller[1]}, KV ${smaller[2]} at ${o.contextLength} tokens`);
    else {
      const c2 = maxContextThatFits(p, o2, limits);
      if (c2 > 0) suggestions.push(`models ${smaller[0]}, fuser ${smaller[1]}, KV ${smaller[2]} with at most ${c2} tokens`);
    }
  }
  const hint = suggestions.length ? ` What would fit: ${suggestions.join('; or ')}.` : ' Nothing fits on this adapter.';
  throw new MemoryBudgetError(`${p.label} at ${o.contextLength} tokens does not fit: ${v.join('; ')}.${hint}`, {
    preset: p.name,
    contextLength: o.contextLength,
    totalBytes: e.totalBytes,
    largestBuffer: e.largestBuffer,
    maxContextThatFits: ctx,
  });
}

/** f32 bytes of a loaded fuser's weights on the CPU (what the loaders build), from upstream's tensor shapes. */
export function fuserCpuWeightBytes(dims: FuserDims): number {
  const perPath = pathTensorShapes(dims).reduce((n, t) => n + t.shape.reduce((a, d) => a * d, 1), 0);
  return dims.receiver.numLayers * PATHS.length * perPath * 4;
}

/**
 * Refuses, before its weight files are downloaded, a fuser whose loading needs more than `budgetBytes`: the f32
 * weights plus the raw file bytes held at the same time (`rawBytes`: one projector file for the official
 * layout, read one at a time; every listed file for the c2c-web format). Returns the estimate.
 */
export function checkFuserLoadBudget(dims: FuserDims, o: { budgetBytes: number; rawBytes: number; what: string }): number {
  const weights = fuserCpuWeightBytes(dims);
  const total = weights + o.rawBytes;
  if (total > o.budgetBytes) {
    throw new MemoryBudgetError(
      `${o.what} needs about ${fmt(total)} while loading (weights ${fmt(weights)} as f32 + ${fmt(o.rawBytes)} of file bytes held at once); `
        + `the budget is ${fmt(o.budgetBytes)}. No weight file was downloaded.`,
      { field: 'memoryBudgetBytes', expected: o.budgetBytes, actual: total },
    );
  }
  return total;
}
