/**
 * Fast CPU fuser: the C2C fuser compiled to ONNX graphs (graph.ts, protobuf.ts) and run by an injected
 * onnxruntime module: onnxruntime-node in Node, the onnxruntime-web instance transformers.js uses in the browser
 * (wasm EP: SIMD + threads, ~20× the plain-JS reference). Same validation, range semantics and results (within f32
 * rounding) as the reference fuser, which stays the source of truth.
 *
 * Bounded memory at real size: the receiver layers are split into consecutive groups whose f32 weights stay under
 * `maxSessionWeightBytes`, one InferenceSession per group, compiled one after another. So no protobuf comes near
 * the 2 GiB limit, and the transient copies while compiling (transposed weights, the encoded model, ORT's parse)
 * are those of one group, not of the whole fuser (bench/onnx-fuser-memory.json has the numbers).
 * float16 KV is fed and fetched as float16 (graph.ts: `.f16` inputs/outputs, Cast to f32 inside); the result
 * has the receiver's dtype, closed paths and tokens outside the range are the receiver's own bits.
 */
import { DisposedError, throwIfAborted } from '../../errors';
import type { KVCache, KVTensor, FuseOptions, Fuser, FuserWeights } from '../../types';
import { checkCacheShapes, resolveRange } from '../reference-checks';
import { checkFuserWeights } from '../shapes';
import { copyTensor, seqRangeData, spliceSeq } from '../../kv/ops';
import { halfBits } from '../../kv/convert';
import { buildFuserGraph, f16Name, openPaths, outputName, receiverName, sharerName, type KVKind } from './graph';
import { encodeModel } from './protobuf';
import type { LinearParams, ProjectorPathParams } from '../../types';

/** The slice of the onnxruntime API (common to onnxruntime-node and onnxruntime-web) this module uses. */
export interface OrtTensorLike {
  readonly data: unknown;
  readonly dims: readonly number[];
  dispose?(): void;
}
export interface OrtSessionLike {
  run(feeds: Record<string, OrtTensorLike>, fetches?: readonly string[]): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
}
export interface OrtModuleLike {
  Tensor: new (type: 'float32' | 'float16', data: Float32Array | Uint16Array, dims: readonly number[]) => OrtTensorLike;
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
  /**
   * Upper bound on one session's f32 weight bytes (default 256 MiB): consecutive receiver layers share a session
   * up to it; a layer larger than the bound gets a session of its own.
   */
  maxSessionWeightBytes?: number;
}

export interface OnnxFuser extends Fuser {
  /** Receiver layers of each session, in order (layers whose paths are all closed need none). */
  readonly sessionLayers: readonly (readonly number[])[];
}

const DEFAULT_SESSION_BYTES = 256 * 2 ** 20;

const linearBytes = (p: LinearParams) => 4 * (p.weight.length + (p.bias?.length ?? 0));
function pathWeightBytes(p: ProjectorPathParams): number {
  const blocks = [...p.mlp1, ...p.scalarMlp2, ...p.projMlp2];
  return linearBytes(p.in) + linearBytes(p.scalarHead) + linearBytes(p.projOut)
    + blocks.reduce((n, b) => n + linearBytes(b.w1) + linearBytes(b.w2) + 4 * b.norm.length, 0);
}

/** Consecutive receiver layers with open paths, grouped so each group's weights stay under `maxBytes`. */
export function groupLayers(weights: FuserWeights, maxBytes: number): number[][] {
  const groups: number[][] = [];
  let cur: number[] = [];
  let bytes = 0;
  weights.layers.forEach((layer, l) => {
    const open = openPaths(weights, [l]);
    if (!open.length) return;
    const b = open.reduce((n, [, kv]) => n + pathWeightBytes(layer[kv]), 0);
    if (cur.length && bytes + b > maxBytes) {
      groups.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(l);
    bytes += b;
  });
  if (cur.length) groups.push(cur);
  return groups;
}

interface Part {
  session: OrtSessionLike;
  receiverInputs: [number, KVKind][];
  sharerInputs: [number, KVKind][];
}

/** Compiles `weights` to ONNX, one session per layer group, created one at a time. */
export async function createOnnxFuser(weights: FuserWeights, opts: OnnxFuserOptions): Promise<OnnxFuser> {
  checkFuserWeights(weights);
  const cfg = weights.config;
  const groups = groupLayers(weights, opts.maxSessionWeightBytes ?? DEFAULT_SESSION_BYTES);
  const parts: Part[] = [];
  const releaseAll = () => Promise.all(parts.map((p) => p.session.release().catch(() => undefined)));
  try {
    for (const layers of groups) {
      const g = buildFuserGraph(weights, layers)!;
      // The encoded model is dropped as soon as ORT has parsed it (one group's bytes alive at a time).
      const session = await opts.ort.InferenceSession.create(encodeModel(g.graph), {
        ...opts.sessionOptions,
        ...(opts.executionProviders ? { executionProviders: opts.executionProviders } : {}),
      });
      parts.push({ session, receiverInputs: g.receiverInputs, sharerInputs: g.sharerInputs });
    }
  } catch (e) {
    await releaseAll();
    throw e;
  }
  const { Tensor } = opts.ort;
  let disposed = false;
  let running: Promise<unknown> = Promise.resolve();

  async function runPart(part: Part, receiver: KVCache, sharer: KVCache, s0: number, s1: number, out: KVCache): Promise<void> {
    const n = s1 - s0;
    const feeds: Record<string, OrtTensorLike> = {};
    // Each value goes in under its dtype's name, its twin as an empty [H, 0, D] tensor.
    const feed = (name: string, t: KVTensor) => {
      const data = seqRangeData(t, s0, s1);
      const half = t.dtype === 'float16';
      feeds[half ? f16Name(name) : name] = new Tensor(half ? 'float16' : 'float32', data, [t.heads, n, t.headDim]);
      feeds[half ? name : f16Name(name)] = new Tensor(half ? 'float32' : 'float16', half ? new Float32Array(0) : new Uint16Array(0),
        [t.heads, 0, t.headDim]);
    };
    for (const [l, kv] of part.receiverInputs) feed(receiverName(l, kv), receiver[l][kv]);
    for (const [j, kv] of part.sharerInputs) feed(sharerName(j, kv), sharer[j][kv]);
    const fetch = (l: number, kv: KVKind) => (receiver[l][kv].dtype === 'float16' ? f16Name(outputName(l, kv)) : outputName(l, kv));
    const fetches = part.receiverInputs.map(([l, kv]) => fetch(l, kv));
    const results = await part.session.run(feeds, fetches);
    for (const [l, kv] of part.receiverInputs) {
      const t = results[fetch(l, kv)];
      const r = receiver[l][kv];
      out[l][kv] = spliceSeq(r, asKVData(t.data, r), s0, s1);
    }
    for (const t of Object.values(results)) t.dispose?.();
  }

  async function run(receiver: KVCache, sharer: KVCache, s0: number, s1: number): Promise<KVCache> {
    // Closed paths (and layers without a session) are the receiver, bit for bit.
    const out: KVCache = receiver.map((l) => ({ key: copyTensor(l.key), value: copyTensor(l.value) }));
    for (const part of parts) await runPart(part, receiver, sharer, s0, s1, out);
    return out;
  }

  // Warm-up: one 1-token run, so first-run allocations and kernel setup are not billed to the first request.
  if (opts.warmup !== false && parts.length) {
    const zeros = (d: typeof cfg.receiver): KVCache => Array.from({ length: d.numLayers }, () => {
      const t = (): KVTensor => ({ dtype: 'float32', data: new Float32Array(d.kvHeads * d.headDim), heads: d.kvHeads, seq: 1,
        headDim: d.headDim });
      return { key: t(), value: t() };
    });
    try {
      await run(zeros(cfg.receiver), zeros(cfg.sharer), 0, 1);
    } catch (e) {
      await releaseAll();
      throw e;
    }
  }

  return {
    config: cfg,
    backend: 'cpu',
    sessionLayers: groups,
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
      void running.then(releaseAll).catch(() => undefined);
    },
  };
}

/** ORT output data as the receiver's array type (a Float16Array output is viewed as its bits). */
function asKVData(data: unknown, like: KVTensor): KVTensor['data'] {
  const bits = like.dtype === 'float16' ? halfBits(data) : data;
  if (!(bits instanceof (like.dtype === 'float16' ? Uint16Array
    : Float32Array))) throw new TypeError(`ONNX fuser output is not ${like.dtype ?? 'float32'} data`);
  return bits as KVTensor['data'];
}
