/**
 * CPU reference fuser: the exact C2C projector forward (docs/fuser-format.md "Forward") in Float32 storage
 * with f64 accumulation, batch 1, KV in the `[kv_heads, seq, head_dim]` layout. It is the ground truth the
 * WebGPU kernels are checked against and the fallback backend. Inputs are never mutated; closed-gate paths
 * and tokens outside [start, end) are copies of the receiver KV, bit for bit.
 * float16 KV (fp16 / q4f16 models): each layer's K/V is widened to f32 inside (exact), fused in f32, and the
 * fused tokens are rounded once (nearest-even) back to the receiver's own dtype; the sharer may differ in dtype.
 */
import { DisposedError, throwIfAborted } from '../errors';
import type { KVCache, KVTensor, KVTensorF32, FFNBlockParams, FuseOptions, Fuser, FuserConfig, FuserWeights, LinearParams,
  ProjectorPathParams } from '../types';
import { copyTensor, narrowData, sliceSeq, spliceSeq, widenData } from '../kv/ops';
import { geluInPlace, linear, rmsNorm, sigmoid } from './math';
import { checkCacheShapes, checkKVTensor, resolveRange } from './reference-checks';
import { checkFuserWeights, checkPathParams } from './shapes';

/** x + W2 · GELU(W1 · RMSNorm(x)) for each block in turn; `rows` token rows of width hidden. */
function ffnStack(x: Float32Array, blocks: FFNBlockParams[], rows: number, eps: number): Float32Array {
  let h = x;
  for (const b of blocks) {
    const u = geluInPlace(linear(rmsNorm(h, b.norm, rows, eps), b.w1.weight, undefined, rows, b.w1.inDim, b.w1.outDim));
    const d = linear(u, b.w2.weight, undefined, rows, b.w2.inDim, b.w2.outDim);
    const next = new Float32Array(h.length);
    for (let i = 0; i < h.length; i++) next[i] = h[i] + d[i];
    h = next;
  }
  return h;
}

function applyLinear(x: Float32Array, p: LinearParams, rows: number): Float32Array {
  return linear(x, p.weight, p.bias, rows, p.inDim, p.outDim);
}

/** The tensor as f32 for the math (f16 widened exactly; f32 returned as is). */
function asF32(t: KVTensor): KVTensorF32 {
  return t.dtype === 'float16' ? { dtype: 'float32', data: widenData(t), heads: t.heads, seq: t.seq, headDim: t.headDim } : t;
}

/**
 * Fuses one path (K or V) of one receiver layer over tokens [start, end); returns a new tensor with the
 * receiver's shape and dtype. `sharer` is the sharer KV at layer G(l).
 */
export function fuseLayerPath(
  path: ProjectorPathParams,
  cfg: FuserConfig,
  receiver: KVTensor,
  sharer: KVTensor,
  start?: number,
  end?: number,
): KVTensor {
  checkKVTensor(receiver, cfg.receiver, 'receiver');
  checkKVTensor(sharer, cfg.sharer, 'sharer');
  checkPathParams(path, cfg, 'path');
  const [s0, s1] = resolveRange(receiver.seq, start, end);
  // Hard gate of inference: logit > 0 opens the path; a closed path is the receiver itself.
  if (!(path.gateLogit > 0) || s1 === s0) return copyTensor(receiver);
  const out = fuseOpenPath(path, cfg, asF32(receiver), asF32(sharer), s0, s1);
  if (receiver.dtype !== 'float16') return out;
  // One rounding of the fused tokens; the others stay the receiver's own f16 bits.
  return spliceSeq(receiver, narrowData(sliceSeq(out, s0, s1).data, 'float16'), s0, s1);
}

/** The open-gate forward in f32: a copy of `receiver` with tokens [s0, s1) fused. */
function fuseOpenPath(path: ProjectorPathParams, cfg: FuserConfig, receiver: KVTensorF32, sharer: KVTensorF32, s0: number,
  s1: number): KVTensorF32 {
  const seq = receiver.seq;
  const out = copyTensor(receiver);

  const n = s1 - s0;
  const hr = receiver.heads, dr = receiver.headDim, hs = sharer.heads, ds = sharer.headDim;
  const inDim = hs * ds, outDim = hr * dr, width = inDim + outDim;
  // Token-major input rows: concat(sharer, receiver), each flattened head-major (h * D + d).
  const x = new Float32Array(n * width);
  for (let t = 0; t < n; t++) {
    const tok = s0 + t;
    const row = t * width;
    for (let h = 0; h < hs; h++) x.set(sharer.data.subarray((h * seq + tok) * ds, (h * seq + tok + 1) * ds), row + h * ds);
    for (let h = 0; h < hr; h++) {
      x.set(receiver.data.subarray((h * seq + tok) * dr, (h * seq + tok + 1) * dr), row + inDim + h * dr);
    }
  }

  const eps = cfg.rmsNormEps;
  const h1 = ffnStack(applyLinear(x, path.in, n), path.mlp1, n, eps);
  const proj = applyLinear(ffnStack(h1, path.projMlp2, n, eps), path.projOut, n);
  const z = applyLinear(ffnStack(h1, path.scalarMlp2, n, eps), path.scalarHead, n);

  const o = out.data;
  for (let t = 0; t < n; t++) {
    const tok = s0 + t;
    for (let h = 0; h < hr; h++) {
      const w = sigmoid(z[t * hr + h] / cfg.scalarTemperature); // one weight per (token, receiver KV head)
      const pBase = t * outDim + h * dr;
      const oBase = (h * seq + tok) * dr;
      for (let d = 0; d < dr; d++) o[oBase + d] = o[oBase + d] + w * proj[pBase + d];
    }
  }
  return out;
}

/** Fuses a whole receiver cache: receiver layer l reads sharer layer config.layerMap[l]. Returns a new cache. */
export function fuseCache(weights: FuserWeights, receiver: KVCache, sharer: KVCache, opts: FuseOptions = {}): KVCache {
  const cfg = weights.config;
  checkFuserWeights(weights);
  const seq = checkCacheShapes(cfg, receiver, sharer);
  resolveRange(seq, opts.start, opts.end);
  const fused: KVCache = [];
  // f16 sharer layers are widened once per call, even when several receiver layers read the same one.
  const widened = new Map<KVTensor, KVTensorF32>();
  const sharerF32 = (t: KVTensor) => {
    let w = widened.get(t);
    if (!w) widened.set(t, (w = asF32(t)));
    return w;
  };
  for (let l = 0; l < cfg.receiver.numLayers; l++) {
    throwIfAborted(opts.signal);
    const src = sharer[cfg.layerMap[l]];
    const proj = weights.layers[l];
    const path = (p: 'key' | 'value') => {
      const open = proj[p].gateLogit > 0;
      return fuseLayerPath(proj[p], cfg, receiver[l][p], open ? sharerF32(src[p]) : src[p], opts.start, opts.end);
    };
    fused.push({ key: path('key'), value: path('value') });
  }
  return fused;
}

/** The CPU backend of the Fuser interface. Runs synchronously inside the returned promise. */
export function createReferenceFuser(weights: FuserWeights): Fuser {
  checkFuserWeights(weights);
  let disposed = false;
  return {
    config: weights.config,
    backend: 'cpu',
    async fuse(receiver: KVCache, sharer: KVCache, opts: FuseOptions = {}): Promise<KVCache> {
      if (disposed) throw new DisposedError('the reference fuser has been disposed');
      throwIfAborted(opts.signal);
      return fuseCache(weights, receiver, sharer, opts);
    },
    dispose(): void {
      disposed = true;
    },
  };
}
