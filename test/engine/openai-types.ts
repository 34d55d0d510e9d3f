/**
 * Compile-time check (run by `tsc` in `npm test`): c2c-web's OpenAI-shaped responses are assignable to the
 * official `openai` client's own types, so code written against the client accepts them unchanged.
 */
import type { ChatCompletion as OpenAIChatCompletion,
  ChatCompletionChunk as OpenAIChatCompletionChunk } from 'openai/resources/chat/completions';
import type { CompletionUsage as OpenAIUsage } from 'openai/resources/completions';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequestStreaming, CompletionUsage } from '../../src/types';

type Assignable<To, From extends To> = From;

export type CompletionIsOpenAI = Assignable<OpenAIChatCompletion, ChatCompletion>;
export type ChunkIsOpenAI = Assignable<OpenAIChatCompletionChunk, ChatCompletionChunk>;
export type UsageIsOpenAI = Assignable<OpenAIUsage, CompletionUsage>;

/** A request as OpenAI client code writes it (plain messages, sampling, stop, streaming with usage) is ours too. */
export const typicalRequest: ChatCompletionRequestStreaming = {
  model: 'c2c-tiny',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: [{ type: 'text', text: 'Which city does Mibrar live in?' }] },
  ],
  temperature: 0.7,
  top_p: 0.9,
  max_tokens: 16,
  seed: 1,
  stop: ['\n'],
  stream: true,
  stream_options: { include_usage: true },
};
