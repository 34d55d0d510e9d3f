/** Checks of what a caller passes to generate()/stream(): typed errors naming the field, before any work starts. */
import { InvalidInputError } from '../errors';
import { GENERATION_MODES, type ChatMessage, type GenerateOptions } from '../types';
import { validateSampling } from '../hosts/sampling';

export const MAX_STOP_SEQUENCES = 16;

export function validateMessages(messages: unknown): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new InvalidInputError('messages must be a non-empty array of {role, content}', { field: 'messages', actual: Array.isArray(messages) ? 0 : typeof messages });
  }
  messages.forEach((m, i) => {
    const ok = m && typeof m === 'object' && ['system', 'user', 'assistant'].includes((m as ChatMessage).role) && typeof (m as ChatMessage).content === 'string';
    if (!ok) throw new InvalidInputError(`messages[${i}] must be {role: 'system'|'user'|'assistant', content: string}`, { field: `messages[${i}]` });
  });
  if (!messages.some((m: ChatMessage) => m.role === 'user' && m.content.length > 0)) {
    throw new InvalidInputError('messages need at least one non-empty user message', { field: 'messages' });
  }
}

export function validateOptions(o: GenerateOptions): void {
  if (o.mode !== undefined && !GENERATION_MODES.includes(o.mode)) throw new InvalidInputError(`unknown mode "${o.mode}"`, { field: 'mode', actual: o.mode });
  for (const k of ['maxNewTokens', 'relayMaxTokens'] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new InvalidInputError(`${k} must be an integer >= 1 (got ${v})`, { field: k, actual: v });
  }
  validateSampling(o.sampling);
  if (o.stop !== undefined) {
    const ok = Array.isArray(o.stop) && o.stop.length <= MAX_STOP_SEQUENCES && o.stop.every((x) => typeof x === 'string' && x.length > 0);
    if (!ok) throw new InvalidInputError(`stop must be an array of at most ${MAX_STOP_SEQUENCES} non-empty strings`, { field: 'stop', actual: o.stop });
  }
}

