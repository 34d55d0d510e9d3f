/**
 * The OpenAI-shaped facade over any C2CEngine: `engine.chat.completions.create({ messages, stream, max_tokens,
 * temperature, top_p, seed, stop, signal, c2c: { mode } })` → `ChatCompletion`, or with `stream: true` an
 * async iterable of `ChatCompletionChunk` (WebLLM's shape), `usage` included (last chunk with
 * `stream_options.include_usage`). Request fields this runtime cannot honour are refused, never ignored.
 */
import { InvalidInputError } from '../errors';
import { validateMessages, validateOptions } from './validate';
import {
  GENERATION_MODES,
  type ChatCompletion, type ChatCompletionChunk, type ChatCompletionMessageParam, type ChatCompletionRequest, type ChatCompletionsApi,
  type ChatFinishReason, type ChatMessage, type CompletionUsage, type GenerateOptions, type GenerationMode, type GenerationResult,
  type SamplingOptions, type StreamEvent,
} from '../types';

/** The engine calls the facade needs (so any C2CEngine, also a fake one, gets the same API). */
export interface CompletionBackend {
  readonly modelId: string;
  generate(messages: ChatMessage[], opts?: GenerateOptions): Promise<GenerationResult>;
  stream(messages: ChatMessage[], opts?: Omit<GenerateOptions, 'onToken'>): AsyncIterable<StreamEvent>;
}

/** OpenAI accepts at most 4 stop sequences. */
const MAX_OPENAI_STOPS = 4;
const UNSUPPORTED = ['tools', 'tool_choice', 'functions', 'function_call', 'response_format', 'logit_bias', 'top_logprobs'] as const;

const bad = (field: string, message: string, actual?: unknown): never => {
  throw new InvalidInputError(message, { field, actual });
};

function textOf(m: ChatCompletionMessageParam, i: number): string {
  if (typeof m.content === 'string') return m.content;
  if (m.content === null && m.role === 'assistant') return '';
  if (!Array.isArray(m.content)) return bad(`messages[${i}].content`, `messages[${i}].content must be a string or an array of text parts`);
  return m.content
    .map((p, j) => (p && p.type === 'text' && typeof p.text === 'string' ? p.text : bad(`messages[${i}].content[${j}]`, `messages[${i}].content[${j}]: only text parts are supported`)))
    .join('');
}

/** OpenAI messages → engine messages ('developer' is a system turn; text parts are joined). */
export function toChatMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages)) return bad('messages', 'messages must be an array');
  return messages.map((m: ChatCompletionMessageParam, i) => {
    if (!m || typeof m !== 'object') return bad(`messages[${i}]`, `messages[${i}] must be an object`);
    const role = m.role === 'developer' ? 'system' : m.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant') return bad(`messages[${i}].role`, `messages[${i}].role "${String(m.role)}" is not supported`, m.role);
    return { role, content: textOf(m, i) };
  });
}

const optNumber = (v: number | null | undefined): number | undefined => (v === null ? undefined : v);

/** The mode a request asks for: `c2c.mode`, else the `<modelId>/<mode>` suffix of `model`, else 'c2c'. */
export function resolveMode(modelId: string, r: ChatCompletionRequest): GenerationMode {
  let fromModel: GenerationMode | undefined;
  if (r.model !== undefined && r.model !== modelId) {
    const mode = r.model.startsWith(`${modelId}/`) ? r.model.slice(modelId.length + 1) : undefined;
    if (!mode || !GENERATION_MODES.includes(mode as GenerationMode)) {
      bad('model', `model "${r.model}" is not served here (models: ${[modelId, ...GENERATION_MODES.filter((m) => m !== 'c2c').map((m) => `${modelId}/${m}`)].join(', ')})`, r.model);
    }
    fromModel = mode as GenerationMode;
  }
  const asked = r.c2c?.mode;
  if (asked !== undefined && fromModel !== undefined && asked !== fromModel) bad('c2c.mode', `c2c.mode "${asked}" contradicts model "${r.model}"`, asked);
  return asked ?? fromModel ?? 'c2c';
}

/** Checks a request and maps it to engine options (mode, token budget, sampling, stop, signal). */
export function toGenerateOptions(modelId: string, r: ChatCompletionRequest): GenerateOptions {
  if (!r || typeof r !== 'object') bad('request', 'the request must be an object');
  for (const f of UNSUPPORTED) if (r[f] !== undefined && r[f] !== null) bad(f, `${f} is not supported by c2c-web`);
  if (r.logprobs) bad('logprobs', 'logprobs is not supported by c2c-web');
  if (r.n !== undefined && r.n !== null && r.n !== 1) bad('n', 'only n = 1 is supported', r.n);
  const maxTokens = optNumber(r.max_completion_tokens) ?? optNumber(r.max_tokens);
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens >= 1)) bad('max_tokens', 'max_tokens must be an integer >= 1', maxTokens);
  const stop = r.stop === null || r.stop === undefined ? undefined : typeof r.stop === 'string' ? [r.stop] : r.stop;
  if (stop !== undefined && (!Array.isArray(stop) || stop.length > MAX_OPENAI_STOPS || stop.some((s) => typeof s !== 'string' || !s))) {
    bad('stop', `stop must be a non-empty string or up to ${MAX_OPENAI_STOPS} of them`, r.stop);
  }
  const temperature = optNumber(r.temperature);
  const sampling: SamplingOptions = {
    // OpenAI's default temperature is 1; greedy decoding needs temperature 0.
    temperature: temperature ?? 1,
    topP: optNumber(r.top_p),
    seed: optNumber(r.seed),
    presencePenalty: optNumber(r.presence_penalty),
    frequencyPenalty: optNumber(r.frequency_penalty),
  };
  return { mode: resolveMode(modelId, r), maxNewTokens: maxTokens, sampling, stop, signal: r.signal };
}

const finishOf = (g: GenerationResult): ChatFinishReason => (g.finishReason === 'length' ? 'length' : 'stop');

function usageOf(g: GenerationResult): CompletionUsage {
  const t = g.timing;
  const n = g.tokenIds.length;
  const ttft = t.ttftMs / 1000;
  return {
    prompt_tokens: g.promptIds.length,
    completion_tokens: n,
    total_tokens: g.promptIds.length + n,
    extra: {
      e2e_latency_s: t.totalMs / 1000,
      prefill_tokens_per_s: ttft > 0 ? g.promptIds.length / ttft : 0,
      decode_tokens_per_s: t.decodeTokensPerS,
      time_to_first_token_s: ttft,
      time_per_output_token_s: n > 1 ? t.decodeMs / 1000 / (n - 1) : 0,
      mode: g.mode,
      sharer_prefill_s: t.sharerPrefillMs / 1000,
      receiver_prefill_s: t.receiverPrefillMs / 1000,
      fuse_s: t.fuseMs / 1000,
      relay_s: t.relayMs / 1000,
      hint_tokens: g.hint?.tokenIds.length ?? 0,
    },
  };
}

const newId = () => `chatcmpl-${globalThis.crypto?.randomUUID?.().replaceAll('-', '') ?? Math.random().toString(36).slice(2)}`;
const nowSeconds = () => Math.floor(Date.now() / 1000);

async function* chunks(backend: CompletionBackend, r: ChatCompletionRequest, messages: ChatMessage[], opts: GenerateOptions): AsyncIterable<ChatCompletionChunk> {
  const base = { id: newId(), object: 'chat.completion.chunk' as const, created: nowSeconds(), model: r.model ?? backend.modelId };
  const withUsage = r.stream_options?.include_usage === true;
  const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finish: ChatFinishReason | null): ChatCompletionChunk => ({
    ...base,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    ...(withUsage ? { usage: null } : {}),
  });
  // Only the answering model's tokens are content: the text-relay hint is the sharer's, not the reply.
  const answerSource = opts.mode === 'sharer' ? 'sharer' : 'receiver';
  const events = backend.stream(messages, opts)[Symbol.asyncIterator]();
  // The first event is awaited before the role chunk, so a request that fails at once (a prompt too long for
  // the context, say) rejects the first next() and a server can still answer with an HTTP error.
  let step = await events.next();
  yield chunk({ role: 'assistant', content: '' }, null);
  for (; !step.done; step = await events.next()) {
    const ev = step.value;
    if (ev.type === 'token') {
      if (ev.source === answerSource && ev.text) yield chunk({ content: ev.text }, null);
      continue;
    }
    yield chunk({}, finishOf(ev.result));
    if (withUsage) yield { ...base, choices: [], usage: usageOf(ev.result) };
  }
}

export function createChatCompletions(backend: CompletionBackend): ChatCompletionsApi {
  async function create(r: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const opts = toGenerateOptions(backend.modelId, r);
    const messages = toChatMessages(r.messages);
    validateMessages(messages);
    validateOptions(opts);
    if (r.stream) return chunks(backend, r, messages, opts);
    const g = await backend.generate(messages, opts);
    return {
      id: newId(),
      object: 'chat.completion',
      created: nowSeconds(),
      model: r.model ?? backend.modelId,
      choices: [{ index: 0, message: { role: 'assistant', content: g.text, refusal: null }, finish_reason: finishOf(g), logprobs: null }],
      usage: usageOf(g),
    };
  }
  return { create } as ChatCompletionsApi;
}

/** The default model id of a pair: its name, else "<receiver>+<sharer>" from the last path segments of the ids. */
export function pairModelId(o: { name?: string; receiver: { id: string }; sharer: { id: string } }): string {
  const tail = (id: string) => id.split('/').filter(Boolean).at(-1) ?? id;
  return o.name ?? `${tail(o.receiver.id)}+${tail(o.sharer.id)}`;
}
