/**
 * Public types of the c2c-web engine: modes, options, streaming events, timing breakdown, progress and
 * device reports. The engine (browser workers or Node) and the demo/benchmark all speak these types.
 */

import type { FuserFormat } from './fuser';
import type { KVDType } from './kv';
import type { ChatMessage, ModelSource } from './model';
import type { ChatCompletionsApi } from './openai';
import type { GenerationMode } from './modes';

export type { GenerationMode } from './modes';
export { GENERATION_MODES } from './modes';

/** Greedy when `temperature` is 0 or absent. */
export interface SamplingOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  /** OpenAI-style penalties on tokens generated so far: presence once per token id, frequency per occurrence. */
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Seed for reproducible sampling. */
  seed?: number;
}

export interface TokenEvent {
  type: 'token';
  mode: GenerationMode;
  /** Which model produced it: the text-relay hint comes from the sharer. */
  source: 'receiver' | 'sharer';
  tokenId: number;
  /** Decoded text added by this token (may be '' while a multi-byte character is incomplete). */
  text: string;
  index: number;
}

export interface GenerateOptions {
  mode?: GenerationMode;
  maxNewTokens?: number;
  sampling?: SamplingOptions;
  /** Text relay: the sharer's hint is capped at this many tokens. */
  relayMaxTokens?: number;
  /** Stop sequences: generation ends where the answer's text first contains one (every mode; not the relay hint). */
  stop?: string[];
  signal?: AbortSignal;
  onToken?: (event: TokenEvent) => void;
}

export interface DeviceReport {
  /** Where the LLMs run. */
  backend: 'webgpu' | 'wasm' | 'cpu';
  /** Where the fuser runs. */
  fuserBackend: 'webgpu' | 'cpu';
  adapter?: { vendor: string; architecture: string; description: string; isFallbackAdapter: boolean };
  shaderF16: boolean;
  /** Set when WebGPU was asked for (or 'auto') but could not be used: never a silent fallback. */
  fallbackReason?: string;
  /**
   * Set when the fuser does not run where it should: the WebGPU fuser failed on a WebGPU device (→ CPU fuser),
   * or the ONNX CPU fuser could not start (→ the plain-JS reference). Never a silent fallback.
   */
  fuserFallbackReason?: string;
  topology: 'workers' | 'single' | 'node';
  /** Whether exact multi-turn prefix reuse is on (EngineOptions.prefixReuse). */
  prefixReuse: boolean;
  /** Which fuser layout was loaded (c2c-web fuser.json + safetensors, or the official C2C folder). */
  fuserFormat?: FuserFormat;
  /** Per model: the dtype of the model file transformers.js loaded ('fp32', 'fp16', 'q4f16', …) and of its KV cache. */
  models: Record<'receiver' | 'sharer', { modelDType: string; kvDType: KVDType }>;
}

export interface TimingBreakdown {
  sharerPrefillMs: number;
  receiverPrefillMs: number;
  fuseMs: number;
  /** Text relay: time the sharer spent writing the hint. */
  relayMs: number;
  /** From the call to the first receiver (or sharer, in sharer mode) output token. */
  ttftMs: number;
  decodeMs: number;
  decodeTokensPerS: number;
  totalMs: number;
  device: DeviceReport;
}

/** 'eos': the model ended its reply; 'stop': a stop sequence was reached (the text is cut before it). */
export type FinishReason = 'eos' | 'stop' | 'length' | 'aborted';

export interface GenerationResult {
  mode: GenerationMode;
  text: string;
  tokenIds: number[];
  /** Ids of the templated prompt the answering model saw. */
  promptIds: number[];
  /** Text relay only: the sharer's hint. */
  hint?: { text: string; tokenIds: number[] };
  finishReason: FinishReason;
  timing: TimingBreakdown;
  /** Prompt tokens taken from the conversation cache instead of prefilled (receiver, sharer) or fused again. */
  reused: { receiver: number; sharer: number; fused: number };
}

export type LoadPhase = 'download' | 'compile' | 'warmup';

/** Aggregated over all files of all models: `progress` is monotone in [0, 1] within a phase. */
export interface ProgressEvent {
  phase: LoadPhase;
  loaded: number;
  total: number;
  progress: number;
  model?: 'sharer' | 'receiver' | 'fuser';
  file?: string;
  /** Download phase: bytes of `file` so far and its size (`loaded`/`total` are the sums over every file seen). */
  fileLoaded?: number;
  fileTotal?: number;
  /** Download phase: `file` came from the local cache, not the network. */
  cached?: boolean;
}

/** Where a fuser comes from; a plain string is `{ url: thatString, format: 'auto' }`. */
export interface FuserLocation {
  /** Folder URL (browser and Node) or directory (Node). */
  url: string;
  /** 'auto' (default): fuser.json → c2c-web; else config.json + final/projector_config.json → official. */
  format?: FuserFormat | 'auto';
  /**
   * Official layout: the sharer's depth, which the checkpoint does not store. Default: the sharer model's when
   * it loads in the same host, else max(layer map) + 1 (exact for the released terminal maps); the pair check
   * at assembly refuses a mismatch.
   */
  sharerNumLayers?: number;
}

export interface EngineOptions {
  /** The pair's name, used as the OpenAI-shaped model id (default: derived from the two model ids). */
  name?: string;
  sharer: ModelSource;
  receiver: ModelSource;
  /**
   * The fuser folder: a c2c-web folder (fuser.json + safetensors) or an official C2C checkpoint folder
   * (config.json + final/projector_*), as a URL (browser, Node) or directory (Node); the format is detected.
   */
  fuser: string | FuserLocation;
  /**
   * Cache downloaded files (models through transformers.js, fuser files through the same store) so a second
   * load fetches nothing. Default: `allowRemoteModels`.
   */
  cache?: boolean;
  /** Refuse, before downloading its weight files, a fuser whose loading needs more memory than this (bytes). */
  memoryBudgetBytes?: number;
  device?: 'auto' | 'webgpu' | 'wasm' | 'cpu';
  /** 'workers': one worker per model; 'single': both models + fuser in one worker on one GPUDevice. */
  topology?: 'workers' | 'single';
  allowRemoteModels?: boolean;
  /**
   * The Hub (or a mirror of it) remote model ids resolve against, as transformers.js `env.remoteHost`
   * (default 'https://huggingface.co/'); files are fetched from `<remoteHost><id>/resolve/main/<file>`.
   */
  remoteHost?: string;
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
  /** Text relay wording (defaults match the shipped tiny pair's training data; see src/engine/relay.ts). */
  relay?: Partial<RelayTemplate>;
  /**
   * Exact multi-turn prefix reuse (default on, except the single-worker WebGPU topology, whose zero-copy GPU
   * path it would give up): the last conversation's KV stays in the hosts and a longer prompt only prefills and
   * fuses its new tokens. One conversation is kept; dispose() frees it.
   */
  prefixReuse?: boolean;
  /** How the fuser runs when it runs on the CPU: 'onnx' (default, ONNX graph on onnxruntime) or 'reference' (plain JS, for debugging). */
  cpuFuser?: 'onnx' | 'reference';
}

/** Text relay wording (src/engine/relay.ts fills it). */
export interface RelayTemplate {
  /** The sharer's user message. `{question}`: the question extracted from the last user message; `{prompt}`: that message whole. */
  sharerUser: string;
  /** The receiver's last user message. `{prompt}`: the original message; `{hint}`: the sharer's text. */
  receiverUser: string;
}

export type StreamEvent = TokenEvent | { type: 'done'; result: GenerationResult };

export interface C2CEngine {
  readonly device: DeviceReport;
  /** The id OpenAI-shaped responses carry (`EngineOptions.name`, else derived from the two model ids). */
  readonly modelId: string;
  /** OpenAI-shaped API: `engine.chat.completions.create({ messages, stream, … })` (src/engine/openai.ts). */
  readonly chat: { readonly completions: ChatCompletionsApi };
  generate(messages: ChatMessage[], opts?: GenerateOptions): Promise<GenerationResult>;
  stream(messages: ChatMessage[], opts?: Omit<GenerateOptions, 'onToken'>): AsyncIterable<StreamEvent>;
  /** Runs every mode (or the ones given) on the same messages, one after another. */
  compare(messages: ChatMessage[], opts?: Omit<GenerateOptions, 'mode'> & { modes?: GenerationMode[] }): Promise<Record<GenerationMode, GenerationResult>>;
  /**
   * Loads the pair again into fresh hosts (browser: new workers on a new GPUDevice). Not needed after a
   * DeviceLostError or WorkerCrashedError, which make the next request reload automatically.
   */
  reload(): Promise<void>;
  /** Forgets the cached conversation (prefix reuse starts over with the next request), as WebLLM's resetChat(). */
  resetChat(): Promise<void>;
  dispose(): Promise<void>;
}
