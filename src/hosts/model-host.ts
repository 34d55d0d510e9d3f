/**
 * ModelHost: owns one or both models (and, for the receiver, the fuser) and implements HostApi. It runs
 * inside a Web Worker (workers/model.worker.ts) or in-process (Node, tests). Platform specifics (how
 * transformers.js is configured, where a fuser comes from, which GPU device) are injected as HostPlatform.
 */
import { AbortError, DisposedError, InvalidInputError, ModelLoadError, throwIfAborted } from '../errors';
import type {
  ChatMessage, Fuser, FuserFileProgress, FuserLoadRequest, FuserLoadResult, FuseRequest, FuseResult, GenerateOutcome, GenerateRequest,
  HostApi, HostInit, HostPlatform, HostTokenEvent, KVCache, LoadedModel, ModelRole, ModelSource, PrefillRequest, PrefillResult,
  RawProgressEvent, ResolvedDevice, TokenizerOp, TokenizerSpecials,
} from '../types';
import { CausalLM, disposeTensors, raceAbort, type PastKV } from '../models/causal-lm';
import { presentToKVCache } from '../kv/convert';
import { copyTensor, sliceCache } from '../kv/ops';
import { decodeLoop } from './decode-loop';
import { fuseKept, keptToCpu } from './fusion';
import { fuseFromBase, prefillFromBase } from './prefix';
import { isGpuFuser, presentOnGpu } from './gpu-kv';
import { KVRegistry, type KeptKV } from './kv-registry';

const now = () => performance.now();

export class ModelHost implements HostApi {
  private initOpts: HostInit | null = null;
  private device: ResolvedDevice | null = null;
  private readonly models = new Map<ModelRole, CausalLM>();
  private fuser: Fuser | null = null;
  /** Kept KV: CPU caches, or GPU tensors when the fuser can read them in place. */
  private readonly kept = new KVRegistry();
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

  async loadModel(role: ModelRole, source: ModelSource, onProgress?: (e: RawProgressEvent) => void,
    signal?: AbortSignal): Promise<LoadedModel> {
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
        this.device = { backend: 'wasm', shaderF16: false,
          fallbackReason: `WebGPU model load failed, using wasm: ${(e as Error).message}` };
        lm = await load(this.device);
      }
      onProgress?.({ role, phase: 'compile', loaded: 1, total: 1 });
      // Warm-up: one token through the graph so shader compilation is not billed to the first request.
      const { present } = await lm.forward([0], [0], null);
      const presentType = (present['present.0.key'] as unknown as { type?: string } | undefined)?.type;
      disposeTensors(present);
      if (presentType !== lm.kvDType) {
        await lm.dispose();
        throw new ModelLoadError(`model "${source.id}" takes ${lm.kvDType} past_key_values but returns ${presentType} present.*`,
          { field: 'dtype', expected: lm.kvDType, actual: presentType });
      }
      onProgress?.({ role, phase: 'warmup', loaded: 1, total: 1 });
      await this.models.get(role)?.dispose();
      this.models.set(role, lm);
      return lm;
    };
    const lm = await this.serialised(run);
    const d = this.device!;
    return { info: lm.info, backend: d.backend, fallbackReason: d.fallbackReason, adapter: d.adapter, shaderF16: d.shaderF16,
      modelDType: lm.modelDType, kvDType: lm.kvDType };
  }

  async loadFuser(req: FuserLoadRequest, onProgress?: (e: RawProgressEvent) => void, signal?: AbortSignal): Promise<FuserLoadResult> {
    const { device } = this.ready();
    // The model loads already queued in this host (loadPair starts them first): the sharer's depth, if it is here.
    const modelsQueued = this.loadChain;
    const report = (p: FuserFileProgress) => onProgress?.({ role: 'fuser', phase: 'download', ...p });
    const loaded = await raceAbort(this.platform.loadFuserWeights(req, { signal, onProgress: report }), signal);
    let { weights, sharerLayersFrom } = loaded;
    if (sharerLayersFrom === 'layer-map') {
      await modelsQueued;
      const sharer = this.models.get('sharer')?.info.numLayers;
      if (sharer !== undefined && sharer > Math.max(...weights.config.layerMap)) {
        weights = { ...weights, config: { ...weights.config, sharer: { ...weights.config.sharer, numLayers: sharer } } };
        sharerLayersFrom = 'sharer-model';
      }
    }
    // After the models' loads: a CPU (ONNX, wasm EP) fuser next to WebGPU models would otherwise initialise
    // onnxruntime-web's wasm concurrently with their WebGPU backend ("multiple calls to 'initWasm()'").
    const { fuser, fallbackReason } = await this.serialised(() => this.platform.createFuser(weights, device));
    this.fuser?.dispose();
    this.fuser = fuser;
    // Its files are read and the fuser is built (graph compiled / weights uploaded): its compile step is done.
    onProgress?.({ role: 'fuser', phase: 'compile', loaded: 1, total: 1 });
    return { config: fuser.config, backend: fuser.backend, format: loaded.format, files: loaded.files, sharerLayersFrom, fallbackReason };
  }

  /** Runs `run` after every load queued before it (model loads and fuser creation: one at a time per host). */
  private serialised<T>(run: () => Promise<T>): Promise<T> {
    const p = this.loadChain.then(run, run);
    this.loadChain = p.catch(() => undefined);
    return p;
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
        const s: TokenizerSpecials = { padId: m.info.padId, unkId: m.info.unkId, eosIds: m.info.eosIds, padToken: m.padToken,
          specialTokens: m.specialTokens };
        return s;
      }
    }
  }

  async prefill(role: ModelRole, req: PrefillRequest): Promise<PrefillResult> {
    const m = this.model(role);
    throwIfAborted(req.signal);
    const t0 = now();
    if (req.base) {
      const { kv, mask } = await prefillFromBase(m, this.kept, role, req.base, req.ids, req.positions, req.mask);
      return this.keepResult(role, kv, { ...req, mask }, now() - t0);
    }
    if (req.ids.length === 0) return this.keepResult(role, m.emptyKV(), req, 0);
    // Single topology on WebGPU: keep the GPU tensors for an in-place fusion, no download.
    if (req.keep && !req.returnKV && isGpuFuser(this.fuser) && this.device?.backend === 'webgpu') {
      const { present } = await m.forward(req.ids, req.positions ?? req.ids.map((_, i) => i), null, req.mask);
      if (presentOnGpu(present, m.info.numLayers)) return { handle: this.kept.keep(
        { role, present, seq: req.ids.length, mask: req.mask }), ms: now() - t0 };
      const kv = await presentToKVCache(present as never, m.info.numLayers);
      disposeTensors(present);
      return this.keepResult(role, kv, req, now() - t0);
    }
    const kv = await m.prefillKV(req.ids, req.positions, req.mask);
    return this.keepResult(role, kv, req, now() - t0);
  }

  private keepResult(role: ModelRole, kv: KVCache, req: PrefillRequest, ms: number): PrefillResult {
    const out: PrefillResult = { ms };
    if (req.keep) out.handle = this.kept.keep({ role, kv, seq: kv[0]?.key.seq ?? 0, mask: req.mask });
    if (req.returnKV) {
      const from = req.returnFrom ?? 0;
      out.kv = from > 0 ? sliceCache(kv, from, kv[0]?.key.seq ?? 0) : req.keep ? cloneCache(kv) : kv;
    }
    return out;
  }

  async fuse(req: FuseRequest): Promise<FuseResult> {
    this.ready();
    if (!this.fuser) throw new InvalidInputError('no fuser is loaded in this host', { field: 'fuser' });
    const receiver = this.kept.get(req.receiverHandle, 'receiver');
    if (req.keepInputs || req.fusedBase) return this.fuseReusing(req, receiver);
    // Decoding is receiver-only: a sharer handle of this host is consumed here.
    const sharer = 'handle' in req.sharer ? this.kept.take(req.sharer.handle, 'sharer')
      : { kv: req.sharer.kv, seq: req.sharer.kv[0]?.key.seq ?? 0 };
    const t0 = now();
    // Workers topology: the sharer model is in another worker; its layer count is the fuser's (checked at load).
    const info = { receiver: this.model('receiver').info, sharer: this.models.get('sharer')?.info ?? this.fuser!.config.sharer };
    await fuseKept({ fuser: this.fuser, receiver, sharer, info, ranges: req.ranges, signal: req.signal });
    return { ms: now() - t0 };
  }

  /** Fusion that keeps its inputs (the conversation cache holds them) and may start from a fused prefix. */
  private async fuseReusing(req: FuseRequest, receiver: KeptKV): Promise<FuseResult> {
    const t0 = now();
    const info = { receiver: this.model('receiver').info, sharer: { numLayers: this.fuser!.config.sharer.numLayers } };
    const given = 'kv' in req.sharer ? req.sharer.kv : undefined;
    const sharerEntry = given ? undefined : this.kept.get((req.sharer as { handle: number }).handle, 'sharer');
    const sharer = given
      ? { kv: given, covers: req.fusedBase ? Math.min(req.fusedBase.tokens, receiver.seq) : 0 }
      : { kv: await keptToCpu(sharerEntry!, info.sharer), covers: 0 };
    const fused = await fuseFromBase({ fuser: this.fuser!, kept: this.kept, receiver, sharer, info, fusedBase: req.fusedBase,
      ranges: req.ranges, signal: req.signal });
    const handle = this.kept.keep({ role: 'receiver', kv: fused, seq: receiver.seq, mask: receiver.mask });
    if (!req.keepInputs) this.kept.release(req.receiverHandle);
    return { ms: now() - t0, handle };
  }

  async generate(role: ModelRole, req: GenerateRequest, onToken?: (e: HostTokenEvent) => void): Promise<GenerateOutcome> {
    const m = this.model(role);
    if (req.ids.length === 0) throw new InvalidInputError('generate needs at least one input token', { field: 'ids' });
    let past: PastKV | null = null;
    let mask: number[] | undefined;
    if (req.handle !== null) {
      // A borrowed cache stays kept (and its tensors alive) for the next turn of the conversation.
      const k = req.borrow ? this.kept.get(req.handle, role) : this.kept.take(req.handle, role);
      if (k.present) past = m.pastFromPresent(k.present);
      else if (k.kv && k.seq > 0) past = m.pastFromKV(k.kv);
      mask = k.mask;
    }
    return decodeLoop(m, { past, mask, borrowed: req.borrow }, req, onToken);
  }

  async release(handle: number): Promise<void> {
    this.kept.release(handle);
  }

  /** The GPUDevice this host's models (and WebGPU fuser) run on, if any. */
  get gpuDevice(): GPUDevice | undefined {
    return this.device?.gpuDevice;
  }

  /** Destroys this host's GPU device (what a driver reset does; for recovery tests). No-op without one. */
  async destroyDevice(): Promise<void> {
    this.device?.gpuDevice?.destroy();
  }

  /** Live KV handles of this host (a leak check). */
  get keptHandles(): number {
    return this.kept.size;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.kept.clear();
    this.fuser?.dispose();
    this.fuser = null;
    for (const m of this.models.values()) await m.dispose();
    this.models.clear();
  }
}

function cloneCache(kv: KVCache): KVCache {
  return kv.map((l) => ({ key: copyTensor(l.key), value: copyTensor(l.value) }));
}
