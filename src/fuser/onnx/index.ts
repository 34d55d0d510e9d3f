/**
 * Fast CPU fuser: the whole C2C fuser compiled to one ONNX graph (graph.ts, protobuf.ts) and run by an
 * injected onnxruntime module: onnxruntime-node in Node, the onnxruntime-web instance transformers.js uses
 * in the browser (wasm EP: SIMD + threads, ~20× the plain-JS reference). Same validation, range semantics
 * and results (within f32 rounding) as the reference fuser, which stays the source of truth.
 */
import { DisposedError, throwIfAborted } from '../../errors';
import type { KVCache, KVTensor, FuseOptions, Fuser, FuserWeights } from '../../types';
import { checkCacheShapes, resolveRange } from '../reference-checks';
import { checkFuserWeights } from '../shapes';
import { copyTensor, seqRangeData, spliceSeq } from '../../kv/ops';
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

/** Compiles `weights` to ONNX and opens one session for the fuser's lifetime. */
export async function createOnnxFuser(weights: FuserWeights, opts: OnnxFuserOptions): Promise<Fuser> {
  checkFuserWeights(weights);
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
    const feed = (name: string, t: KVTensor) => { feeds[name] = new Tensor('float32', seqRangeData(t, s0, s1), [t.heads, n, t.headDim]); };
    for (const [l, kv] of receiverInputs) feed(receiverName(l, kv), receiver[l][kv]);
    for (const [j, kv] of sharerInputs) feed(sharerName(j, kv), sharer[j][kv]);
    const results = await session.run(feeds);
    const fused: KVCache = receiver.map((layer, l) => {
      const out = (kv: KVKind): KVTensor => {
        const t = results[outputName(l, kv)];
        return spliceSeq(layer[kv], t.data as Float32Array, s0, s1);
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
