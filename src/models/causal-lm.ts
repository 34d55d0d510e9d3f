/**
 * One causal LM on transformers.js (AutoTokenizer + AutoModelForCausalLM), used without `generate()`: the
 * engine drives its own decode loop so it controls streaming, sampling, abort and the (fused) KV cache.
 * `forward(ids, positions, past)` runs one chunk and returns the last position's logits and `present.*`.
 * The model file is chosen like transformers.js users get it (ModelSource.dtype, else the model's own
 * `transformers.js_config.dtype`, else fp32); its KV dtype (float16 for fp16 / q4f16 exports) is read from
 * the session and kept: past KV is built in it, present KV read in it, f16 logits widened one row at a time.
 */
import { AutoConfig, AutoModelForCausalLM, AutoTokenizer, Tensor } from '@huggingface/transformers';
import { AbortError, ContextOverflowError, InvalidInputError, ModelLoadError, throwIfAborted } from '../errors';
import type { ChatMessage, KVCache, KVDType, ModelInfo, ModelSource } from '../types';
import { isKVDType, kvCacheToPast, lastLogitsRow, presentToKVCache, presentToPast, type TensorLike } from '../kv/convert';

/** Raw per-file progress from transformers.js (`progress` events) and our own phase markers. */
export interface RawProgress {
  file: string;
  loaded: number;
  total: number;
}

export interface LoadOptions {
  device: 'cpu' | 'wasm' | 'webgpu';
  dtype?: string;
  /** ORT session options, e.g. `{ executionProviders: [{ name: 'webgpu', device }] }` for a shared GPUDevice. */
  sessionOptions?: Record<string, unknown>;
  onFileProgress?: (p: RawProgress) => void;
  signal?: AbortSignal;
}

/** Past KV as the model's input tensors (`past_key_values.*`). */
export type PastKV = Record<string, Tensor>;

// transformers.js exposes these through loosely typed classes; we keep the surface we use explicit.
interface TokenizerLike {
  apply_chat_template(conv: ChatMessage[], o: Record<string, unknown>): unknown;
  decode(ids: number[], o?: Record<string, unknown>): string;
  encode(text: string, o?: Record<string, unknown>): number[];
  convert_tokens_to_ids(t: string): number;
  eos_token_id?: number | null;
  pad_token_id?: number | null;
  unk_token_id?: number | null;
  pad_token?: string | null;
  chat_template?: unknown;
  all_special_tokens?: string[];
}
interface SessionLike {
  inputNames: readonly string[];
  inputMetadata?: readonly { name: string; type?: string }[];
  /** transformers.js records the dtype it resolved here (session.js getSession → session_config). */
  config?: { dtype?: string };
}
interface ModelLike {
  (inputs: Record<string, unknown>): Promise<Record<string, TensorLike>>;
  config: Record<string, unknown>;
  generation_config?: Record<string, unknown> | null;
  sessions?: Record<string, SessionLike>;
  dispose(): Promise<unknown>;
}

/** The dtype transformers.js would use by itself from `config.json` (`transformers.js_config`, device overlay first). */
function configDType(config: Record<string, unknown>, device: string): unknown {
  const tjs = (config['transformers.js_config'] ?? {}) as { dtype?: unknown; device_config?: Record<string, { dtype?: unknown }> };
  return tjs.device_config?.[device]?.dtype ?? tjs.dtype;
}

/**
 * The dtype to ask transformers.js for: the source's, else none when config.json names one (transformers.js then
 * resolves it exactly as for its own users: a string, a per-file map or 'auto'), else fp32 (wasm would default to q8).
 */
export function requestedDType(source: Pick<ModelSource, 'dtype'>, config: Record<string, unknown>, device: string,
  fallback = 'fp32'): string | undefined {
  if (source.dtype) return source.dtype;
  return configDType(config, device) !== undefined ? undefined : fallback;
}

/** Chat template variables unless the source says otherwise: no Qwen3 think block (the paper's setting). */
export const DEFAULT_TEMPLATE_OPTIONS: Readonly<Record<string, unknown>> = { enable_thinking: false };

const ids64 = (ids: readonly number[]) => new Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [1, ids.length]);

function asIdList(v: unknown): number[] {
  if (v == null) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is number => typeof x === 'number');
}

export class CausalLM {
  private disposed = false;
  /** The model file's dtype as transformers.js resolved it ('fp32', 'fp16', 'q4f16', …). */
  readonly modelDType: string;
  /** Storage dtype of `past_key_values.*` / `present.*` (from the session's input metadata). */
  readonly kvDType: KVDType;
  /** The session takes `num_logits_to_keep` (we only ever need the last position's logits). */
  readonly keepsLogits: boolean;

  private constructor(
    readonly info: ModelInfo,
    private readonly tokenizer: TokenizerLike,
    private readonly model: ModelLike,
    private readonly templateOptions: Record<string, unknown>,
    dtype: { model: string; kv: KVDType },
  ) {
    this.modelDType = dtype.model;
    this.kvDType = dtype.kv;
    this.keepsLogits = !!model.sessions?.model?.inputNames.includes('num_logits_to_keep');
  }

  static async load(source: ModelSource, o: LoadOptions): Promise<CausalLM> {
    throwIfAborted(o.signal);
    const progress_callback = (e: { status?: string; file?: string; loaded?: number; total?: number }) => {
      if (e.status === 'progress' && e.file && typeof e.loaded === 'number' && typeof e.total === 'number') {
        o.onFileProgress?.({ file: e.file, loaded: e.loaded, total: e.total });
      }
    };
    let tokenizer: TokenizerLike;
    let model: ModelLike;
    try {
      tokenizer = (await raceAbort(AutoTokenizer.from_pretrained(source.id, { progress_callback } as never),
        o.signal)) as unknown as TokenizerLike;
      const config = (await raceAbort(AutoConfig.from_pretrained(source.id, { progress_callback } as never),
        o.signal)) as unknown as Record<string, unknown>;
      const dtype = requestedDType({ dtype: source.dtype ?? o.dtype }, config, o.device);
      const pending = AutoModelForCausalLM.from_pretrained(source.id, {
        config,
        ...(dtype ? { dtype } : {}),
        device: o.device,
        progress_callback,
        ...(o.sessionOptions ? { session_options: o.sessionOptions } : {}),
      } as never) as unknown as Promise<ModelLike>;
      // An abort cannot stop ORT mid-compile; dispose whatever arrives late so nothing leaks.
      model = await raceAbort(pending, o.signal, (m) => void m.dispose());
    } catch (e) {
      if (e instanceof AbortError) throw e;
      const message = (e as Error)?.message ?? String(e);
      throw new ModelLoadError(`cannot load model "${source.id}": ${message}${outOfMemoryHint(message, o.device)}`,
        { field: 'id', actual: source.id }, { cause: e });
    }
    if (!tokenizer.chat_template) {
      await model.dispose();
      throw new ModelLoadError(`model "${source.id}" has no chat_template in tokenizer_config.json`, { field: 'chat_template' });
    }
    const c = model.config;
    const num = (k: string) => (typeof c[k] === 'number' ? (c[k] as number) : NaN);
    const heads = num('num_attention_heads');
    const eosIds = [...new Set([...asIdList(tokenizer.eos_token_id), ...asIdList(model.generation_config?.eos_token_id),
      ...asIdList(c.eos_token_id)])];
    const info: ModelInfo = {
      id: source.id,
      numLayers: num('num_hidden_layers'),
      kvHeads: Number.isFinite(num('num_key_value_heads')) ? num('num_key_value_heads') : heads,
      headDim: Number.isFinite(num('head_dim')) ? num('head_dim') : num('hidden_size') / heads,
      vocabSize: num('vocab_size'),
      maxPositions: Number.isFinite(num('max_position_embeddings')) ? num('max_position_embeddings') : Infinity,
      eosIds,
      padId: tokenizer.pad_token_id ?? null,
      unkId: tokenizer.unk_token_id ?? null,
    };
    for (const k of ['numLayers', 'kvHeads', 'headDim', 'vocabSize'] as const) {
      if (!(Number.isInteger(info[k]) && info[k] > 0)) {
        await model.dispose();
        throw new ModelLoadError(`model "${source.id}" config.json lacks a valid ${k}`, { field: k, actual: info[k] });
      }
    }
    const session = model.sessions?.model;
    const kvType = session?.inputMetadata?.find((m) => m.name === 'past_key_values.0.key')?.type ?? 'float32';
    if (!isKVDType(kvType)) {
      await model.dispose();
      throw new ModelLoadError(`model "${source.id}" takes ${kvType} past_key_values; only float32 and float16 KV are supported`,
        { field: 'dtype', actual: kvType });
    }
    const modelDType = session?.config?.dtype ?? source.dtype ?? o.dtype ?? 'fp32';
    return new CausalLM(info, tokenizer, model, { ...DEFAULT_TEMPLATE_OPTIONS, ...source.chatTemplateOptions },
      { model: modelDType, kv: kvType });
  }

  /** Receiver-style prompt ids: the chat template with the assistant generation prompt appended. */
  encodeChat(messages: ChatMessage[], addGenerationPrompt = true): number[] {
    const ids = this.tokenizer.apply_chat_template(messages, {
      ...this.templateOptions,
      add_generation_prompt: addGenerationPrompt,
      tokenize: true,
      return_tensor: false,
      return_dict: false,
    });
    if (!Array.isArray(ids)) throw new InvalidInputError('chat template did not return token ids', { field: 'messages' });
    return (ids as unknown[]).map(Number);
  }

  /** The templated prompt as text (the aligner needs the string and its message spans). */
  renderChat(messages: ChatMessage[], addGenerationPrompt = true): string {
    return String(this.tokenizer.apply_chat_template(messages,
      { ...this.templateOptions, add_generation_prompt: addGenerationPrompt, tokenize: false }));
  }

  encodeText(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false });
  }

  decode(ids: number[], skipSpecialTokens = true): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | null {
    const id = this.tokenizer.convert_tokens_to_ids(token);
    return typeof id === 'number' && id >= 0 ? id : null;
  }

  get padToken(): string | null {
    return this.tokenizer.pad_token ?? null;
  }

  get specialTokens(): string[] {
    return [...(this.tokenizer.all_special_tokens ?? [])];
  }

  checkContext(promptLength: number, what = 'prompt'): void {
    if (promptLength > this.info.maxPositions) {
      throw new ContextOverflowError(`${what} has ${promptLength} tokens; model "${this.info.id}" holds ${this.info.maxPositions}`, {
        field: 'messages',
        expected: this.info.maxPositions,
        actual: promptLength,
      });
    }
  }

  /**
   * Runs `ids` at `positions` on top of `past` (null: empty cache). `mask` (past + ids long; 1 = attend,
   * 0 = padding) defaults to all ones. Returns the logits of the last position (a copy) and `present.*`
   * covering past + ids, still as model tensors.
   */
  async forward(
    ids: readonly number[],
    positions: readonly number[],
    past: PastKV | null,
    mask?: readonly number[],
  ): Promise<{ logits: Float32Array; present: Record<string, Tensor> }> {
    if (this.disposed) throw new InvalidInputError(`model "${this.info.id}" is disposed`);
    const pastLen = past ? (past['past_key_values.0.key']?.dims[2] ?? 0) : 0;
    this.checkContext(pastLen + ids.length, 'sequence');
    if (mask && mask.length !== pastLen + ids.length) {
      throw new InvalidInputError(`attention mask has ${mask.length} entries for ${pastLen + ids.length} tokens`, { field: 'mask' });
    }
    const inputs: Record<string, unknown> = {
      input_ids: ids64(ids),
      attention_mask: ids64(mask ?? new Array(pastLen + ids.length).fill(1)),
      position_ids: ids64(positions),
    };
    if (past) inputs.past_key_values = past;
    // Only the last position's logits are ever used: the LM head then runs on one row, not `[n, vocab]`.
    if (this.keepsLogits) inputs.num_logits_to_keep = new Tensor('int64', BigInt64Array.of(1n), []);
    const out = await this.model(inputs);
    const logits = out.logits;
    const last = await lastLogitsRow(logits);
    logits.dispose?.();
    const present: Record<string, Tensor> = {};
    for (const k of Object.keys(out)) if (k.startsWith('present.')) present[k] = out[k] as unknown as Tensor;
    return { logits: last, present };
  }

  /** Prefill over `ids` (positions 0..n-1 unless given) and return the KV as our cache, in the model's KV dtype. */
  async prefillKV(ids: readonly number[], positions?: readonly number[], mask?: readonly number[]): Promise<KVCache> {
    const { present } = await this.forward(ids, positions ?? ids.map((_, i) => i), null, mask);
    const kv = await presentToKVCache(present as unknown as Record<string, TensorLike>, this.info.numLayers);
    disposeTensors(present);
    return kv;
  }

  /** Past KV tensors viewing `cache` (which must be in the model's KV dtype: a mismatch is refused, not converted). */
  pastFromKV(cache: KVCache): PastKV {
    return kvCacheToPast(cache, (type, data, dims) => new Tensor(type, data, dims), this.kvDType);
  }

  /** An empty cache (seq 0) in the model's KV dtype. */
  emptyKV(): KVCache {
    const { numLayers, kvHeads: heads, headDim } = this.info;
    const t = () => (this.kvDType === 'float16' ? { dtype: 'float16' as const, data: new Uint16Array(0), heads, seq: 0, headDim }
      : { dtype: 'float32' as const, data: new Float32Array(0), heads, seq: 0, headDim });
    return Array.from({ length: numLayers }, () => ({ key: t(), value: t() }));
  }

  pastFromPresent(present: Record<string, Tensor>): PastKV {
    return presentToPast(present, this.info.numLayers);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.model.dispose();
  }
}

/**
 * Releases the tensors' data: GPU buffers go back to onnxruntime; CPU tensors only drop their reference. Every
 * tensor, not only those whose location is 'gpu-buffer': a GPU tensor read with `getData()` reports location
 * 'cpu' afterwards but keeps its GPU buffer until disposed (a leak of every downloaded KV before this).
 */
export function disposeTensors(t: Record<string, Tensor> | null | undefined): void {
  if (!t) return;
  for (const v of Object.values(t)) v.dispose();
}

/** Resolves like `p`, or rejects with AbortError when `signal` fires first; a late result goes to `onLate`. */
export function raceAbort<T>(p: Promise<T>, signal?: AbortSignal, onLate?: (v: T) => void): Promise<T> {
  if (!signal) return p;
  throwIfAborted(signal);
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const onAbort = () => {
      if (done) return;
      done = true;
      reject(new AbortError('loading was aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        if (done) onLate?.(v);
        else {
          done = true;
          resolve(v);
        }
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        if (!done) {
          done = true;
          reject(e);
        }
      },
    );
  });
}

/**
 * What an allocation failure while creating a session means on wasm: a worker's wasm heap holds at most 4 GiB,
 * and onnxruntime-web's CPU EP widens float16 weights to f32 (measured: the full-size Qwen2.5-0.5B fp16 file,
 * fails this way in bench:scale, bench/scale-chromium-fp16-amd-epyc-2core.json). Empty for any other error.
 */
export function outOfMemoryHint(message: string, device: string | undefined): string {
  if (!/bad_alloc|out of memory|Out of memory|Array buffer allocation failed/.test(message)) return '';
  return device === 'wasm'
    ? " (out of memory: a wasm heap holds at most 4 GiB per worker and the CPU EP widens fp16 weights to f32; on wasm pick dtype 'q8' or 'q4', or run on WebGPU)"
    : ' (out of memory: pick a smaller dtype such as q8 or q4)';
}

