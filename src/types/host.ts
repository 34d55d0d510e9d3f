/**
 * The typed protocol between the engine (main thread) and a model host (a Web Worker, or in-process in Node
 * and in the 'single' topology). Every argument and result is structured-clonable; KV caches travel as
 * transferable ArrayBuffers; AbortSignals and errors cross through comlink transfer handlers (src/hosts/transfer.ts).
 */
import type { DeviceReport, FinishReason, FuserLocation, SamplingOptions } from './engine';
import type { Fuser, FuserConfig, FuserFileReport, FuserFormat, FuserWeights, LoadedFuser } from './fuser';
import type { KVCache, KVDType } from './kv';
import type { ChatMessage, ModelInfo, ModelSource } from './model';

export type ModelRole = 'sharer' | 'receiver';

export interface HostInit {
  /** Where models run; 'auto' tries WebGPU then falls back to wasm (browser) and reports why. */
  device: 'auto' | 'webgpu' | 'wasm' | 'cpu';
  allowRemoteModels: boolean;
  /** transformers.js `env.remoteHost` for remote model ids (EngineOptions.remoteHost). */
  remoteHost?: string;
  /** 'single' (browser): every model of this host shares one GPUDevice, passed to ORT as the EP option. */
  shareDevice: boolean;
  topology: DeviceReport['topology'];
  /** CPU fuser implementation (default 'onnx': the fuser as an ONNX graph on ORT; 'reference': plain JS, for debugging). */
  cpuFuser?: 'onnx' | 'reference';
  /** Cache downloaded files (models and fuser); default `allowRemoteModels`. */
  cache?: boolean;
}

/** Byte progress of one fuser file; `cached`: served from the local cache. */
export interface FuserFileProgress {
  file: string;
  loaded: number;
  total: number;
  cached: boolean;
}

/** A fuser load as the host receives it: the location resolved (absolute URL, or directory in Node). */
export interface FuserLoadRequest extends FuserLocation {
  memoryBudgetBytes?: number;
}

export interface FuserLoadResult {
  config: FuserConfig;
  backend: 'webgpu' | 'cpu';
  format: FuserFormat;
  files: FuserFileReport[];
  sharerLayersFrom: LoadedFuser['sharerLayersFrom'];
  /** Why the fuser is not the one the device called for (reaches DeviceReport.fuserFallbackReason). */
  fallbackReason?: string;
}

export interface RawProgressEvent {
  role: ModelRole | 'fuser';
  phase: 'download' | 'compile' | 'warmup';
  file?: string;
  loaded: number;
  total: number;
  /** Download: served from the local cache. */
  cached?: boolean;
}

export interface PrefillRequest {
  ids: number[];
  /** Positions of the ids (default 0..n-1). */
  positions?: number[];
  /** Attention mask over the ids (1 = real, 0 = padding; default all ones); kept with the KV for decoding. */
  mask?: number[];
  /** Keep the KV in the host under a handle (for fusion / decoding there). */
  keep?: boolean;
  /** Return the KV to the caller (transferred). */
  returnKV?: boolean;
  /** With returnKV: only tokens [returnFrom, end) are returned (the caller already has the rest). */
  returnFrom?: number;
  /**
   * Prefix reuse: a kept KV of this role whose first `tokens` tokens are the past of `ids` (which then start at
   * position `tokens`). The base handle is consumed; the result covers base[0, tokens) + ids.
   */
  base?: { handle: number; tokens: number };
  signal?: AbortSignal;
}

export interface PrefillResult {
  handle?: number;
  kv?: KVCache;
  ms: number;
}

export interface FuseRequest {
  receiverHandle: number;
  /** The sharer KV: a handle in this host (same worker) or the KV itself (transferred from another worker). */
  sharer: { handle: number } | { kv: KVCache };
  /** Token ranges [start, end) to fuse (default: all tokens); tokens outside keep the receiver's values. */
  ranges?: [number, number][];
  /**
   * Prefix reuse: a kept fused cache whose first `tokens` tokens are already this prompt's fused tokens. Only
   * tokens from there on are fused (a sharer `kv` then covers just those); the base handle is consumed.
   */
  fusedBase?: { handle: number; tokens: number };
  /** Keep the raw receiver and sharer KV under their handles; the fused cache goes under a new one (returned). */
  keepInputs?: boolean;
  signal?: AbortSignal;
}

export interface FuseResult {
  ms: number;
  /** The fused cache's handle when `keepInputs` was set (else the receiver handle holds it). */
  handle?: number;
}

export interface GenerateRequest {
  /** KV to start from (kept by prefill/fuse) or null for an empty cache. The handle is consumed unless `borrow`. */
  handle: number | null;
  /** Tokens to run first (the rest of the prompt), at positions startPos.. */
  ids: number[];
  startPos: number;
  maxNewTokens: number;
  sampling?: SamplingOptions;
  /** Tokens counted as already seen by the repetition penalty (the whole prompt). */
  seenIds: number[];
  /** Stop sequences on the decoded text. */
  stop?: string[];
  /** Start from `handle` without consuming it (a cached prompt that the next turn may extend). */
  borrow?: boolean;
  signal?: AbortSignal;
}

export interface HostTokenEvent {
  tokenId: number;
  text: string;
  index: number;
}

export interface GenerateOutcome {
  tokenIds: number[];
  text: string;
  finishReason: FinishReason;
  /** From the start of this call to the first generated token. */
  firstTokenMs: number;
  /** From the first generated token to the last. */
  decodeMs: number;
}

export interface LoadedModel {
  info: ModelInfo;
  backend: 'webgpu' | 'wasm' | 'cpu';
  fallbackReason?: string;
  adapter?: DeviceReport['adapter'];
  shaderF16: boolean;
  /** The model file's dtype as transformers.js resolved it ('fp32', 'fp16', 'q4f16', 'q8', …). */
  modelDType: string;
  /** Storage dtype of the model's past/present KV (float16 for fp16 and q4f16 exports). */
  kvDType: KVDType;
}

/** What a platform built for `createFuser`: the fuser and, when it is a fallback, why. */
export interface CreatedFuser {
  fuser: Fuser;
  fallbackReason?: string;
}

/** What a host offers; the worker exposes exactly this through comlink. */
export interface HostApi {
  init(init: HostInit): Promise<void>;
  loadModel(role: ModelRole, source: ModelSource, onProgress?: (e: RawProgressEvent) => void, signal?: AbortSignal): Promise<LoadedModel>;
  /** Loads the fuser (either format) with per-file byte progress; returns its config, where it runs and how it loaded. */
  loadFuser(req: FuserLoadRequest, onProgress?: (e: RawProgressEvent) => void, signal?: AbortSignal): Promise<FuserLoadResult>;
  encodeChat(role: ModelRole, messages: ChatMessage[]): Promise<number[]>;
  decode(role: ModelRole, ids: number[]): Promise<string>;
  /** Tokenizer queries the cross-tokenizer aligner needs. */
  tokenizerOps(role: ModelRole, op: TokenizerOp): Promise<unknown>;
  prefill(role: ModelRole, req: PrefillRequest): Promise<PrefillResult>;
  fuse(req: FuseRequest): Promise<FuseResult>;
  generate(role: ModelRole, req: GenerateRequest, onToken?: (e: HostTokenEvent) => void): Promise<GenerateOutcome>;
  release(handle: number): Promise<void>;
  /** Destroys the host's GPU device, if it has one (simulates a device loss; recovery tests use it). */
  destroyDevice(): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * The same calls as they cross a worker boundary: comlink only runs transfer handlers on top-level
 * arguments, so each AbortSignal is passed as a trailing argument instead of inside the request.
 */
export interface WireHostApi {
  prefill(role: ModelRole, req: Omit<PrefillRequest, 'signal'>, signal?: AbortSignal): Promise<PrefillResult>;
  fuse(req: Omit<FuseRequest, 'signal'>, signal?: AbortSignal): Promise<FuseResult>;
  generate(role: ModelRole, req: Omit<GenerateRequest, 'signal'>, onToken?: (e: HostTokenEvent) => void, signal?: AbortSignal): Promise<GenerateOutcome>;
}

export type TokenizerOp =
  | { kind: 'render'; messages: ChatMessage[] }
  | { kind: 'decodeEach'; ids: number[] }
  | { kind: 'encodePieces'; pieces: string[] }
  | { kind: 'encodeText'; text: string }
  | { kind: 'tokenToId'; tokens: string[] }
  | { kind: 'specials' };

export interface TokenizerSpecials {
  padId: number | null;
  unkId: number | null;
  eosIds: number[];
  padToken: string | null;
  specialTokens: string[];
}

/** The device a host resolved once at init (what every model of the host runs on). */
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
  /** Reads the fuser (either format, cached where the platform caches) and reports per-file byte progress. */
  loadFuserWeights(req: FuserLoadRequest, o: { signal?: AbortSignal; onProgress?: (p: FuserFileProgress) => void }): Promise<LoadedFuser>;
  /** The WebGPU fuser on a WebGPU device, else the CPU fuser; a fallback comes with its reason, never silently. */
  createFuser(weights: FuserWeights, device: ResolvedDevice): Promise<CreatedFuser>;
}
