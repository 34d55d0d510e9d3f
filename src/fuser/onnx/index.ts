/**
 * Fast CPU fuser: the whole C2C fuser compiled to one ONNX graph (graph.ts, protobuf.ts) and run by an
 * injected onnxruntime module: onnxruntime-node in Node, the onnxruntime-web instance transformers.js uses
 * in the browser (wasm EP: SIMD + threads, ~20× the plain-JS reference). Same validation, range semantics
 * and results (within f32 rounding) as the reference fuser, which stays the source of truth.
 */
import { DisposedError, FuserFormatError, throwIfAborted } from '../../errors';
import type { KVCache, KVTensor } from '../../kv/types';
import { checkCacheShapes, checkPathParams, resolveRange } from '../reference-checks';
import type { FuseOptions, Fuser, FuserWeights } from '../types';
import { buildFuserGraph, outputName, receiverName, sharerName, type KVKind } from './graph';
import { encodeModel } from './protobuf';

/** The slice of the onnxruntime API (common to onnxruntime-node and onnxruntime-web) this module uses. */
export interface OrtTensorLike {
  readonly data: unknown;
  readonly dims: readonly number[];
  dispose?(): void;
}
export interface OrtSessionLike {
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
}
export interface OrtModuleLike {
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensorLike;
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSessionLike> };
}

export interface OnnxFuserOptions {
  ort: OrtModuleLike;
  /** Default: onnxruntime's own default (CPU in Node, wasm in the browser). */
  executionProviders?: string[];
  /** Extra InferenceSession options (e.g. intraOpNumThreads in Node). */
  sessionOptions?: Record<string, unknown>;
  /** Run the graph once on one zero token at creation (default true). */
  warmup?: boolean;
}

/** Tokens [s0, s1) of a `[H, S, D]` tensor as a new `[H, n, D]` array (the whole data when the range is full). */
function sliceTokens(t: KVTensor, s0: number, s1: number): Float32Array {
  if (s0 === 0 && s1 === t.seq) return t.data;
  const n = s1 - s0;
  const out = new Float32Array(t.heads * n * t.headDim);
  for (let h = 0; h < t.heads; h++) out.set(t.data.subarray((h * t.seq + s0) * t.headDim, (h * t.seq + s1) * t.headDim), h * n * t.headDim);
  return out;
}

/** A copy of the receiver tensor with tokens [s0, s1) replaced by `fused` (`[H, n, D]`). */
function splice(r: KVTensor, fused: Float32Array, s0: number, s1: number): KVTensor {
  const n = s1 - s0;
  const data = s0 === 0 && s1 === r.seq ? new Float32Array(fused) : new Float32Array(r.data);
  if (!(s0 === 0 && s1 === r.seq)) {
    for (let h = 0; h < r.heads; h++) data.set(fused.subarray(h * n * r.headDim, (h + 1) * n * r.headDim), (h * r.seq + s0) * r.headDim);
  }
  return { data, heads: r.heads, seq: r.seq, headDim: r.headDim };
}

function copyTensor(t: KVTensor): KVTensor {
  return { data: new Float32Array(t.data), heads: t.heads, seq: t.seq, headDim: t.headDim };
}

function checkWeights(weights: FuserWeights): void {
  const cfg = weights.config;
  if (weights.layers.length !== cfg.receiver.numLayers || cfg.layerMap.length !== cfg.receiver.numLayers) {
    throw new FuserFormatError(`fuser has ${weights.layers.length} projectors and ${cfg.layerMap.length} layerMap entries, config.receiver.numLayers is ${cfg.receiver.numLayers}`, {
      field: 'layers', expected: cfg.receiver.numLayers, actual: weights.layers.length,
    });
  }
  cfg.layerMap.forEach((g, l) => {
    if (!Number.isInteger(g) || g < 0 || g >= cfg.sharer.numLayers) {
      throw new FuserFormatError(`layerMap[${l}] = ${g} is not a sharer layer (0..${cfg.sharer.numLayers - 1})`, { field: `layerMap[${l}]`, actual: g });
    }
  });
  weights.layers.forEach((layer, l) => {
    checkPathParams(layer.key, cfg, `layers[${l}].key`);
    checkPathParams(layer.value, cfg, `layers[${l}].value`);
  });
}

/** Compiles `weights` to ONNX and opens one session for the fuser's lifetime. */
export async function createOnnxFuser(weights: FuserWeights, opts: OnnxFuserOptions): Promise<Fuser> {
  checkWeights(weights);
  const cfg = weights.config;
  const { graph, receiverInputs, sharerInputs } = buildFuserGraph(weights);
  const model = encodeModel(graph);
  const session = await opts.ort.InferenceSession.create(model, {
    ...opts.sessionOptions,
    ...(opts.executionProviders ? { executionProviders: opts.executionProviders } : {}),
  });
  const { Tensor } = opts.ort;
  let disposed = false;
  let running: Promise<unknown> = Promise.resolve();

  async function run(receiver: KVCache, sharer: KVCache, s0: number, s1: number): Promise<KVCache> {
    const n = s1 - s0;
    const feeds: Record<string, OrtTensorLike> = {};
    const feed = (name: string, t: KVTensor) => { feeds[name] = new Tensor('float32', sliceTokens(t, s0, s1), [t.heads, n, t.headDim]); };
    for (const [l, kv] of receiverInputs) feed(receiverName(l, kv), receiver[l][kv]);
    for (const [j, kv] of sharerInputs) feed(sharerName(j, kv), sharer[j][kv]);
    const results = await session.run(feeds);
    const fused: KVCache = receiver.map((layer, l) => {
      const out = (kv: KVKind): KVTensor => {
        const t = results[outputName(l, kv)];
        return splice(layer[kv], t.data as Float32Array, s0, s1);
      };
      return { key: out('key'), value: out('value') };
    });
    for (const t of Object.values(results)) t.dispose?.();
    return fused;
  }

  // Warm-up: one 1-token run, so first-run allocations and kernel setup are not billed to the first request.
  if (opts.warmup !== false) {
    const zeros = (d: typeof cfg.receiver): KVCache => Array.from({ length: d.numLayers }, () => {
      const t = (): KVTensor => ({ data: new Float32Array(d.kvHeads * d.headDim), heads: d.kvHeads, seq: 1, headDim: d.headDim });
      return { key: t(), value: t() };
    });
    try {
      await run(zeros(cfg.receiver), zeros(cfg.sharer), 0, 1);
    } catch (e) {
      await session.release().catch(() => undefined);
      throw e;
    }
  }

  return {
    config: cfg,
    backend: 'cpu',
    async fuse(receiver: KVCache, sharer: KVCache, fo: FuseOptions = {}): Promise<KVCache> {
      if (disposed) throw new DisposedError('the ONNX fuser has been disposed');
      throwIfAborted(fo.signal);
      const seq = checkCacheShapes(cfg, receiver, sharer);
      const [s0, s1] = resolveRange(seq, fo.start, fo.end);
      if (s0 === s1) return receiver.map((l) => ({ key: copyTensor(l.key), value: copyTensor(l.value) }));
      // One run at a time per session (ORT sessions are not re-entrant on the wasm EP).
      const next = running.then(() => {
        if (disposed) throw new DisposedError('the ONNX fuser has been disposed');
        return run(receiver, sharer, s0, s1);
      });
      running = next.catch(() => undefined);
      return next;
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      void running.then(() => session.release()).catch(() => undefined);
    },
  };
}
