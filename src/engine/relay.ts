/**
 * Text relay (the paper's T2T baseline): the sharer writes a short hint for the user's question, and the
 * hint is appended to the receiver's prompt. The wording matches the training data of the shipped tiny pair
 * (train/world.py: `hint_request` and `with_hint`), so the receiver sees hints the way it was trained to.
 */
import { InvalidInputError } from '../errors';
import type { ChatMessage, RelayTemplate } from '../types';

export const DEFAULT_RELAY_TEMPLATE: RelayTemplate = {
  sharerUser: 'Write a hint for: {question}',
  receiverUser: '{prompt}\nHint: {hint}',
};

/** The question inside a prompt: its first line, without a leading "Question: " label. */
export function extractQuestion(prompt: string): string {
  const first = prompt.split('\n', 1)[0];
  return first.replace(/^Question:\s*/, '');
}

function fill(template: string, vars: Record<string, string>): string {
  // One pass, so a value containing "{hint}" is never substituted again.
  return template.replace(/\{(question|prompt|hint)\}/g, (m, k: string) => vars[k] ?? m);
}

function lastUserIndex(messages: ChatMessage[]): number {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i].role === 'user') return i;
  throw new InvalidInputError('text relay needs a user message', { field: 'messages' });
}

/** The sharer's conversation: one user turn asking for a hint about the last user question. */
export function relaySharerMessages(messages: ChatMessage[], t: RelayTemplate = DEFAULT_RELAY_TEMPLATE): ChatMessage[] {
  const prompt = messages[lastUserIndex(messages)].content;
  return [{ role: 'user', content: fill(t.sharerUser, { question: extractQuestion(prompt), prompt }) }];
}

/** The receiver's conversation: the same history with the hint appended to the last user message. */
export function relayReceiverMessages(messages: ChatMessage[], hint: string, t: RelayTemplate = DEFAULT_RELAY_TEMPLATE): ChatMessage[] {
  const i = lastUserIndex(messages);
  return messages.map((m, j) => (j === i ? { role: m.role, content: fill(t.receiverUser, { prompt: m.content, hint }) } : m));
}
