/**
 * Public types of the c2c-web engine: modes, options, streaming events, timing breakdown, progress and
 * device reports. The engine (browser workers or Node) and the demo/benchmark all speak these types.
 */

import type { KVDType } from './kv';
import type { ChatMessage, ModelSource } from './model';

export type GenerationMode = 'c2c' | 'text-relay' | 'receiver' | 'sharer';
/** The modes in the order compare() runs them (the one value in this folder: the union's members at run time). */
export const GENERATION_MODES: readonly GenerationMode[] = ['receiver', 'sharer', 'text-relay', 'c2c'];

/** Greedy when `temperature` is 0 or absent. */
export interface SamplingOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
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
  topology: 'workers' | 'single' | 'node';
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

export type FinishReason = 'eos' | 'length' | 'aborted';

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
}

export interface EngineOptions {
  sharer: ModelSource;
  receiver: ModelSource;
  /** Folder URL (browser) or directory (Node) holding fuser.json + safetensors. */
  fuser: string;
  device?: 'auto' | 'webgpu' | 'wasm' | 'cpu';
  /** 'workers': one worker per model; 'single': both models + fuser in one worker on one GPUDevice. */
  topology?: 'workers' | 'single';
  allowRemoteModels?: boolean;
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
  /** Text relay wording (defaults match the shipped tiny pair's training data; see src/engine/relay.ts). */
  relay?: Partial<RelayTemplate>;
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
  generate(messages: ChatMessage[], opts?: GenerateOptions): Promise<GenerationResult>;
  stream(messages: ChatMessage[], opts?: Omit<GenerateOptions, 'onToken'>): AsyncIterable<StreamEvent>;
  /** Runs every mode (or the ones given) on the same messages, one after another. */
  compare(messages: ChatMessage[], opts?: Omit<GenerateOptions, 'mode'> & { modes?: GenerationMode[] }): Promise<Record<GenerationMode, GenerationResult>>;
  dispose(): Promise<void>;
}
