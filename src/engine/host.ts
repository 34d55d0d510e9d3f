/**
 * ModelHost: owns one or both models (and, for the receiver, the fuser) and implements HostApi. It runs
 * inside a Web Worker (workers/model.worker.ts) or in-process (Node, tests). Platform specifics (how
 * transformers.js is configured, where a fuser comes from, which GPU device) are injected as HostPlatform.
 */
import { AbortError, DisposedError, InvalidInputError, ShapeMismatchError, throwIfAborted } from '../errors';
import type { Fuser, FuserConfig, FuserWeights } from '../fuser/types';
import type { KVCache } from '../kv/types';
import { CausalLM, disposeTensors, raceAbort, type PastKV } from '../models/causal-lm';
import type {
  FuseRequest,
  GenerateOutcome,
  GenerateRequest,
  HostApi,
  HostInit,
  HostTokenEvent,
  LoadedModel,
  ModelRole,
  PrefillRequest,
  PrefillResult,
  RawProgressEvent,
  TokenizerOp,
  TokenizerSpecials,
} from './protocol';
import { TokenSampler } from './sampling';
import { gpuKVToPresent, isGpuFuser, presentOnGpu, presentToGpuKV } from './gpu-kv';
import { presentToKVCache } from '../kv/convert';
import type { Tensor } from '@huggingface/transformers';
import type { ChatMessage, DeviceReport, ModelSource } from './types';

export interface ResolvedDevice {
  backend: 'webgpu' | 'wasm' | 'cpu';
  fallbackReason?: string;
  adapter?: DeviceReport['adapter'];
  shaderF16: boolean;
  /** ORT session options for every model of this host (e.g. a shared GPUDevice as the EP option). */
  sessionOptions?: Record<string, unknown>;
  gpuDevice?: GPUDevice;
}

export interface HostPlatform {
  /** Picks the backend once per host; on 'auto' or 'webgpu' failures it returns wasm plus the reason. */
  resolveDevice(init: HostInit): Promise<ResolvedDevice>;
  /** Points transformers.js at the model's folder/URL (serialised by the host, env is global). */
  configureEnv(source: ModelSource, init: HostInit, signal?: AbortSignal): void;
  loadFuserWeights(location: string, signal?: AbortSignal): Promise<FuserWeights>;
  createFuser(weights: FuserWeights, device: ResolvedDevice): Promise<Fuser>;
}

const now = () => performance.now();

export class ModelHost implements HostApi {
  private initOpts: HostInit | null = null;
  private device: ResolvedDevice | null = null;
  private readonly models = new Map<ModelRole, CausalLM>();
  private fuser: Fuser | null = null;
  /** Kept KV: Float32 (`kv`), or GPU tensors (`present`) when the fuser can read them in place. */
  private readonly kept = new Map<number, { role: ModelRole; kv?: KVCache; present?: Record<string, Tensor>; seq: number; mask?: number[] }>();
  private nextHandle = 1;
  private loadChain: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(private readonly platform: HostPlatform) {}

  async init(init: HostInit): Promise<void> {
    this.initOpts = init;
    this.device = await this.platform.resolveDevice(init);
  }

  private ready(): { init: HostInit; device: ResolvedDevice } {
    if (this.disposed) throw new DisposedError('the model host has been disposed');
    if (!this.initOpts || !this.device) throw new InvalidInputError('model host used before init()');
    return { init: this.initOpts, device: this.device };
  }

  private model(role: ModelRole): CausalLM {
    this.ready();
    const m = this.models.get(role);
    if (!m) throw new InvalidInputError(`no ${role} model is loaded in this host`, { field: role });
    return m;
  }

  async loadModel(role: ModelRole, source: ModelSource, onProgress?: (e: RawProgressEvent) => void, signal?: AbortSignal): Promise<LoadedModel> {
    const { init } = this.ready();
    // transformers.js `env` is global: one load at a time per host, each with its own localModelPath.
    const run = async () => {
      throwIfAborted(signal);
      this.platform.configureEnv(source, init, signal);
      const load = (d: ResolvedDevice) =>
        CausalLM.load(source, {
          device: d.backend,
          sessionOptions: d.sessionOptions,
          signal,
          onFileProgress: (p) => onProgress?.({ role, phase: 'download', ...p }),
        });
      let lm: CausalLM;
      try {
        lm = await load(this.device!);
      } catch (e) {
        // 'auto' may fall back from WebGPU to wasm, and says so (DeviceReport.fallbackReason).
        if (this.device!.backend !== 'webgpu' || init.device !== 'auto' || e instanceof AbortError) throw e;
        this.device = { backend: 'wasm', shaderF16: false, fallbackReason: `WebGPU model load failed, using wasm: ${(e as Error).message}` };
        lm = await load(this.device);
      }
      onProgress?.({ role, phase: 'compile', loaded: 1, total: 1 });
      // Warm-up: one token through the graph so shader compilation is not billed to the first request.
      const { present } = await lm.forward([0], [0], null);
      disposeTensors(present);
      onProgress?.({ role, phase: 'warmup', loaded: 1, total: 1 });
      await this.models.get(role)?.dispose();
      this.models.set(role, lm);
      return lm;
    };
    const p = this.loadChain.then(run, run);
    this.loadChain = p.catch(() => undefined);
    const lm = await p;
    const d = this.device!;
    return { info: lm.info, backend: d.backend, fallbackReason: d.fallbackReason, adapter: d.adapter, shaderF16: d.shaderF16 };
  }

  async loadFuser(location: string, signal?: AbortSignal): Promise<{ config: FuserConfig; backend: 'webgpu' | 'cpu' }> {
    const { device } = this.ready();
    const weights = await raceAbort(this.platform.loadFuserWeights(location, signal), signal);
    const fuser = await this.platform.createFuser(weights, device);
    this.fuser?.dispose();
    this.fuser = fuser;
    return { config: fuser.config, backend: fuser.backend };
  }

  async encodeChat(role: ModelRole, messages: ChatMessage[]): Promise<number[]> {
    return this.model(role).encodeChat(messages);
  }

  async decode(role: ModelRole, ids: number[]): Promise<string> {
    return this.model(role).decode(ids);
  }

  async tokenizerOps(role: ModelRole, op: TokenizerOp): Promise<unknown> {
    const m = this.model(role);
    switch (op.kind) {
      case 'render':
        return m.renderChat(op.messages);
      case 'decodeEach':
        return op.ids.map((id) => m.decode([id], false));
      case 'encodePieces':
        return op.pieces.map((p) => m.encodeText(p));
      case 'encodeText':
        return m.encodeText(op.text);
      case 'tokenToId':
        return op.tokens.map((t) => m.tokenToId(t));
      case 'specials': {
        const s: TokenizerSpecials = { padId: m.info.padId, unkId: m.info.unkId, eosIds: m.info.eosIds, padToken: m.padToken, specialTokens: m.specialTokens };
        return s;
      }
    }
  }

  async prefill(role: ModelRole, req: PrefillRequest): Promise<PrefillResult> {
    const m = this.model(role);
    throwIfAborted(req.signal);
    if (req.ids.length === 0) return this.keepResult(role, emptyCache(m), req, 0);
    const t0 = now();
    // Single topology on WebGPU: keep the GPU tensors for an in-place fusion, no download.
    if (req.keep && !req.returnKV && isGpuFuser(this.fuser) && this.device?.backend === 'webgpu') {
      const { present } = await m.forward(req.ids, req.positions ?? req.ids.map((_, i) => i), null, req.mask);
      if (presentOnGpu(present, m.info.numLayers)) {
        const handle = this.nextHandle++;
        this.kept.set(handle, { role, present, seq: req.ids.length, mask: req.mask });
        return { handle, ms: now() - t0 };
      }
      const kv = await presentToKVCache(present as never, m.info.numLayers);
      disposeTensors(present);
      return this.keepResult(role, kv, req, now() - t0);
    }
    const kv = await m.prefillKV(req.ids, req.positions, req.mask);
    return this.keepResult(role, kv, req, now() - t0);
  }

  private keepResult(role: ModelRole, kv: KVCache, req: PrefillRequest, ms: number): PrefillResult {
    const out: PrefillResult = { ms };
    if (req.keep) {
      out.handle = this.nextHandle++;
      this.kept.set(out.handle, { role, kv, seq: kv[0]?.key.seq ?? 0, mask: req.mask });
    }
    if (req.returnKV) out.kv = req.keep ? cloneCache(kv) : kv;
    return out;
  }

  /** The Float32 KV of a kept entry (downloading GPU tensors if needed). */
  private async keptKV(k: { kv?: KVCache; present?: Record<string, Tensor> }, role: ModelRole): Promise<KVCache> {
    if (!k.kv) {
      k.kv = await presentToKVCache(k.present as never, this.model(role).info.numLayers);
      disposeTensors(k.present);
      k.present = undefined;
    }
    return k.kv;
  }

  async fuse(req: FuseRequest): Promise<{ ms: number }> {
    this.ready();
    if (!this.fuser) throw new InvalidInputError('no fuser is loaded in this host', { field: 'fuser' });
    const r = this.kept.get(req.receiverHandle);
    if (!r || r.role !== 'receiver') throw new InvalidInputError(`unknown receiver KV handle ${req.receiverHandle}`);
    let s: { kv?: KVCache; present?: Record<string, Tensor>; seq: number };
    if ('handle' in req.sharer) {
      const k = this.kept.get(req.sharer.handle);
      if (!k || k.role !== 'sharer') throw new InvalidInputError(`unknown sharer KV handle ${req.sharer.handle}`);
      s = k;
      this.kept.delete(req.sharer.handle); // decoding is receiver-only: the sharer cache is done
    } else s = { kv: req.sharer.kv, seq: req.sharer.kv[0]?.key.seq ?? 0 };
    if (r.seq !== s.seq) throw new ShapeMismatchError(`receiver KV has ${r.seq} tokens, sharer KV ${s.seq}`, { expected: r.seq, actual: s.seq });
    const t0 = now();
    const ranges = (req.ranges ?? [[0, r.seq]]).filter(([a, b]) => b > a);
    const fuser = this.fuser;
    try {
      if (r.present && s.present && isGpuFuser(fuser) && ranges.length) {
        const rm = this.model('receiver');
        let cur = r.present;
        const sharerGpu = presentToGpuKV(s.present, this.model('sharer').info.numLayers);
        for (const [start, end] of ranges) {
          const bufs = await fuser.fuseBuffers(presentToGpuKV(cur, rm.info.numLayers), sharerGpu, r.seq, { start, end, signal: req.signal });
          const next = gpuKVToPresent(bufs, cur['present.0.key'], rm.info, r.seq);
          disposeTensors(cur);
          cur = next;
        }
        r.present = cur;
      } else {
        const rKV = await this.keptKV(r, 'receiver');
        const sKV = await this.keptKV(s, 'sharer');
        for (const [start, end] of ranges) r.kv = await fuser.fuse(r.kv ?? rKV, sKV, { start, end, signal: req.signal });
      }
    } finally {
      if (s.present) disposeTensors(s.present);
    }
    return { ms: now() - t0 };
  }

  async generate(role: ModelRole, req: GenerateRequest, onToken?: (e: HostTokenEvent) => void): Promise<GenerateOutcome> {
    const m = this.model(role);
    const t0 = now();
    let past: PastKV | null = null;
    // A padded (cross-tokenizer) prefix keeps its mask: pads are never attended while decoding.
    let mask: number[] | undefined;
    if (req.handle !== null) {
      const k = this.kept.get(req.handle);
      if (!k || k.role !== role) throw new InvalidInputError(`unknown ${role} KV handle ${req.handle}`);
      this.kept.delete(req.handle);
      if (k.present) past = m.pastFromPresent(k.present);
      else if (k.kv && k.seq > 0) past = m.pastFromKV(k.kv);
      mask = k.mask;
    }
    if (req.ids.length === 0) throw new InvalidInputError('generate needs at least one input token', { field: 'ids' });
    const sampler = new TokenSampler(req.sampling);
    const seen = [...req.seenIds];
    const out: number[] = [];
    const eos = new Set(m.info.eosIds);
    let ids = req.ids, pos = req.startPos, text = '', firstAt = 0;
    let finishReason: GenerateOutcome['finishReason'] = 'length';
    try {
      const limit = Math.min(req.maxNewTokens, m.info.maxPositions - (req.startPos + req.ids.length) + 1);
      while (out.length < limit) {
        // Let queued messages (an abort arriving through a MessagePort) run between steps.
        if (req.signal) await yieldToEventLoop();
        if (req.signal?.aborted) {
          if (out.length === 0) throwIfAborted(req.signal);
          finishReason = 'aborted';
          break;
        }
        if (mask) mask = [...mask, ...ids.map(() => 1)];
        const step = await m.forward(ids, ids.map((_, i) => pos + i), past, mask);
        if (past && past !== step.present) disposeTensors(past as Record<string, never>);
        past = m.pastFromPresent(step.present);
        pos += ids.length;
        const tok = sampler.next(step.logits, seen);
        if (out.length === 0) firstAt = now();
        out.push(tok);
        seen.push(tok);
        // Emit the text this token completes; hold back while a multi-byte character is unfinished.
        const full = m.decode(out);
        const delta = full.endsWith('\uFFFD') ? '' : full.slice(text.length);
        if (!full.endsWith('\uFFFD')) text = full;
        onToken?.({ tokenId: tok, text: delta, index: out.length - 1 });
        if (eos.has(tok)) {
          finishReason = 'eos';
          break;
        }
        ids = [tok];
      }
    } finally {
      disposeTensors(past as Record<string, never> | null);
    }
    const end = now();
    return {
      tokenIds: out,
      text: m.decode(out),
      finishReason,
      firstTokenMs: out.length ? firstAt - t0 : end - t0,
      decodeMs: out.length ? end - firstAt : 0,
    };
  }

  async release(handle: number): Promise<void> {
    disposeTensors(this.kept.get(handle)?.present);
    this.kept.delete(handle);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const k of this.kept.values()) disposeTensors(k.present);
    this.kept.clear();
    this.fuser?.dispose();
    this.fuser = null;
    for (const m of this.models.values()) await m.dispose();
    this.models.clear();
  }
}

/** A macrotask turn (MessageChannel, not setTimeout: no 4 ms clamp), so pending messages are delivered. */
function yieldToEventLoop(): Promise<void> {
  if (typeof MessageChannel === 'undefined') return new Promise((r) => setTimeout(r, 0));
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

function emptyCache(m: CausalLM): KVCache {
  const { numLayers, kvHeads, headDim } = m.info;
  return Array.from({ length: numLayers }, () => ({
    key: { data: new Float32Array(0), heads: kvHeads, seq: 0, headDim },
    value: { data: new Float32Array(0), heads: kvHeads, seq: 0, headDim },
  }));
}

function cloneCache(kv: KVCache): KVCache {
  return kv.map((l) => ({ key: { ...l.key, data: new Float32Array(l.key.data) }, value: { ...l.value, data: new Float32Array(l.value.data) } }));
}
