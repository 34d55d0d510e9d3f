/**
 * OpenAI-shaped chat completion types (the subset c2c-web serves), written to be assignable to the official
 * `openai` client's `ChatCompletion` / `ChatCompletionChunk` (test/engine/openai-types.ts checks that with the
 * client's own types). `usage.extra` carries our stage timings, with WebLLM's field names where they exist.
 */
import type { GenerationMode } from './modes';

export interface ChatCompletionContentPartText {
  type: 'text';
  text: string;
}

export interface ChatCompletionMessageParam {
  /** 'developer' is read as 'system'. */
  role: 'system' | 'developer' | 'user' | 'assistant';
  /** Text, or text parts (joined); null only for an assistant turn. */
  content: string | ChatCompletionContentPartText[] | null;
  name?: string;
}

/** c2c-web's own request options. */
export interface C2CRequestOptions {
  /** Default 'c2c' (or the mode named by a `model` of the form `<pair>/<mode>`). */
  mode?: GenerationMode;
}

export interface ChatCompletionRequestBase {
  messages: ChatCompletionMessageParam[];
  /** The engine's model id (`engine.modelId`) or `<modelId>/<mode>`; optional in the engine API. */
  model?: string;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  /** Up to 4 sequences, as OpenAI allows. */
  stop?: string | string[] | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  /** Only 1 is supported. */
  n?: number | null;
  stream_options?: { include_usage?: boolean } | null;
  user?: string;
  /** Cancels the request (download-free: the pair is loaded already). */
  signal?: AbortSignal;
  c2c?: C2CRequestOptions;
  /** OpenAI features this runtime does not serve: refused with a clear error when set. */
  tools?: unknown;
  tool_choice?: unknown;
  functions?: unknown;
  function_call?: unknown;
  response_format?: unknown;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  logit_bias?: Record<string, number> | null;
}

export interface ChatCompletionRequestNonStreaming extends ChatCompletionRequestBase {
  stream?: false | null;
}

export interface ChatCompletionRequestStreaming extends ChatCompletionRequestBase {
  stream: true;
}

export type ChatCompletionRequest = ChatCompletionRequestNonStreaming | ChatCompletionRequestStreaming;

/** Stage timings of one request, seconds (WebLLM's names first). */
export interface UsageExtra {
  e2e_latency_s: number;
  /** Prompt tokens ÷ time to the first token (everything before it: prefills, fusion, a relay hint). */
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  time_to_first_token_s: number;
  time_per_output_token_s: number;
  mode: GenerationMode;
  sharer_prefill_s: number;
  receiver_prefill_s: number;
  fuse_s: number;
  /** Text relay: the time the sharer spent writing its hint, and the hint's length. */
  relay_s: number;
  hint_tokens: number;
}

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  extra: UsageExtra;
}

export type ChatFinishReason = 'stop' | 'length';

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string; refusal: null };
    finish_reason: ChatFinishReason;
    logprobs: null;
  }[];
  usage: CompletionUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: 'assistant'; content?: string };
    finish_reason: ChatFinishReason | null;
    logprobs: null;
  }[];
  /** With `stream_options.include_usage`: null on every chunk but the last, which has no choices. */
  usage?: CompletionUsage | null;
}

export interface ChatCompletionsApi {
  create(request: ChatCompletionRequestStreaming): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
  create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
}
