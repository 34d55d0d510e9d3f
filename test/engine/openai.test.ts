/**
 * The OpenAI-shaped facade (`engine.chat.completions.create`) on the Node engine with the shipped pair: greedy
 * completions equal the engine's own golden tokens, streamed chunks add up to the same content with usage on the
 * last chunk, stop sequences cut the answer in every mode (streamed and not, never leaking the stop text), and
 * request fields the runtime cannot honour are refused with the field named.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { createNodeC2CEngine } from '../../src/node';
import { resolveMode, toChatMessages, toGenerateOptions } from '../../src/engine/openai';
import { GENERATION_MODES, type C2CEngine, type ChatCompletionChunk, type GenerationMode } from '../../src/types';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB, pairOptions } from './pair';

describe('OpenAI request mapping (no model)', () => {
  it('maps fields, reads the mode from c2c.mode or the model suffix, and refuses what it cannot serve', () => {
    const o = toGenerateOptions('tiny', { messages: [], model: 'tiny/receiver', max_tokens: 5, temperature: 0, top_p: 0.5, seed: 3,
      stop: 'x' });
    expect(o).toMatchObject({ mode: 'receiver', maxNewTokens: 5, stop: ['x'], sampling: { temperature: 0, topP: 0.5, seed: 3 } });
    expect(toGenerateOptions('tiny', { messages: [] }).sampling?.temperature).toBe(1); // OpenAI's default
    expect(resolveMode('tiny', { messages: [], c2c: { mode: 'sharer' } })).toBe('sharer');
    const refused: [Record<string, unknown>, string][] = [
      [{ tools: [{ type: 'function' }] }, 'tools'],
      [{ response_format: { type: 'json_object' } }, 'response_format'],
      [{ logprobs: true }, 'logprobs'],
      [{ n: 2 }, 'n'],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ max_tokens: 0 }, 'max_tokens'],
      [{ model: 'other-model' }, 'model'],
      [{ model: 'tiny/receiver', c2c: { mode: 'c2c' } }, 'c2c.mode'],
    ];
    for (const [extra, field] of refused) {
      let err: unknown;
      try {
        toGenerateOptions('tiny', { messages: [], ...extra });
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(InvalidInputError);
      expect((err as InvalidInputError).details.field, field).toBe(field);
    }
    expect(toChatMessages([{ role: 'developer', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }])).toEqual(
      [{ role: 'system', content: 'ab' }]);
    expect(() => toChatMessages([{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }])).toThrow(/only text parts/);
  });
});

describe.skipIf(!PAIR)(`OpenAI-shaped API on the Node engine${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  const pair = PAIR_OR_STUB;
  const g = pair.golden;
  let engine: C2CEngine;

  beforeAll(async () => {
    engine = await createNodeC2CEngine({ name: 'c2c-tiny', ...pairOptions(pair.dir) });
  });
  afterAll(async () => engine?.dispose());

  it('a greedy completion gives the golden tokens of every mode, with usage and timing in usage.extra', async () => {
    const c = g.cases[0];
    const goldenKey: Record<GenerationMode, 'c2c' | 'receiver' | 'sharer' | 'text_relay'> = { c2c: 'c2c', receiver: 'receiver',
      sharer: 'sharer', 'text-relay': 'text_relay' };
    for (const mode of GENERATION_MODES) {
      const r = await engine.chat.completions.create({ messages: [{ role: 'user', content: c.user }], temperature: 0,
        max_tokens: g.max_new_tokens, c2c: { mode } });
      const want = await engine.generate([{ role: 'user', content: c.user }], { mode, maxNewTokens: g.max_new_tokens });
      expect(want.tokenIds, mode).toEqual(c[goldenKey[mode]].output_ids);
      expect(r.object).toBe('chat.completion');
      expect(r.model).toBe('c2c-tiny');
      expect(r.id).toMatch(/^chatcmpl-/);
      expect(r.choices[0].message).toEqual({ role: 'assistant', content: want.text, refusal: null });
      expect(r.choices[0].finish_reason).toBe(want.finishReason === 'length' ? 'length' : 'stop');
      expect(r.usage.prompt_tokens).toBe(want.promptIds.length);
      expect(r.usage.completion_tokens).toBe(want.tokenIds.length);
      expect(r.usage.total_tokens).toBe(want.promptIds.length + want.tokenIds.length);
      expect(r.usage.extra.mode).toBe(mode);
      expect(r.usage.extra.e2e_latency_s).toBeGreaterThan(0);
      if (mode === 'c2c') expect(r.usage.extra.fuse_s).toBeGreaterThan(0);
      if (mode === 'text-relay') expect(r.usage.extra.hint_tokens).toBeGreaterThan(0);
    }
  });

  it('streamed chunks add up to the non-streamed content; include_usage puts usage on a last chunk without choices', async () => {
    const messages = [{ role: 'user' as const, content: g.cases[1].user }];
    const whole = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8 });
    const chunks: ChatCompletionChunk[] = [];
    for await (const ch of await engine.chat.completions.create(
      { messages, temperature: 0, max_tokens: 8, stream: true, stream_options: { include_usage: true } })) chunks.push(ch);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.every((ch) => ch.object === 'chat.completion.chunk' && ch.id === chunks[0].id)).toBe(true);
    const content = chunks.flatMap((ch) => ch.choices.map((x) => x.delta.content ?? '')).join('');
    expect(content).toBe(whole.choices[0].message.content);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage?.completion_tokens).toBe(whole.usage.completion_tokens);
    expect(chunks.slice(0, -1).every((ch) => ch.usage === null)).toBe(true);
    expect(chunks.at(-2)!.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
  });

  it('stop sequences cut the answer in every mode, streamed or not, and the stop text never reaches the client', async () => {
    for (const mode of GENERATION_MODES) {
      // A seeded sampled answer with a stop sequence straddling two streamed pieces (the case that needs the hold-back).
      let full = '';
      let stop = '';
      let seed = 0;
      const base = () => ({ messages: [{ role: 'user' as const, content: 'Tell me about Mibrar.' }], temperature: 1.5, seed,
        max_tokens: 24, c2c: { mode } });
      const ask = (extra: { stop?: string }) => engine.chat.completions.create({ ...base(), ...extra });
      const askStream = (stops: string | string[]) => engine.chat.completions.create({ ...base(), stop: stops, stream: true });
      for (; seed < 60 && !stop; seed++) {
        const pieces: string[] = [];
        for await (const ch of await engine.chat.completions.create({ ...base(), stream: true })) if (
          ch.choices[0]?.delta.content) pieces.push(ch.choices[0].delta.content);
        full = pieces.join('');
        // First boundary where a 2-char stop made of both sides' characters first occurs exactly there.
        let at = 0;
        for (let i = 0; i + 1 < pieces.length && !stop; i++) {
          at += pieces[i].length;
          const cand = full.slice(at - 1, at + 1);
          if (i > 0 && cand.trim().length === 2 && full.indexOf(cand) === at - 1) stop = cand;
        }
      }
      seed--;
      expect(stop, `${mode}: no sample with a stop across two pieces`).not.toBe('');
      const expected = full.slice(0, full.indexOf(stop));
      const cut = await ask({ stop });
      expect(cut.choices[0].message.content, mode).toBe(expected);
      expect(cut.choices[0].finish_reason).toBe('stop');
      let streamed = '';
      for await (const ch of await askStream([stop, 'never-matches-this'])) streamed += ch.choices[0]?.delta.content ?? '';
      expect(streamed, mode).toBe(expected);
      // A stop that never occurs holds text back only while it could still match: nothing is lost.
      let all = '';
      for await (const ch of await askStream(`${full}#`)) all += ch.choices[0]?.delta.content ?? '';
      expect(all, mode).toBe(full);
    }
  });

  it('an aborted request rejects with AbortError and the engine stays usable', async () => {
    const ctl = new AbortController();
    ctl.abort();
    await expect(engine.chat.completions.create({ messages: [{ role: 'user', content: g.cases[0].user }],
      signal: ctl.signal })).rejects.toMatchObject({ name: 'AbortError' });
    const messages = [{ role: 'user' as const, content: g.cases[0].user }];
    const ok = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: g.max_new_tokens });
    expect(ok.choices[0].message.content).toBe((await engine.generate(messages, { maxNewTokens: g.max_new_tokens })).text);
  });
});
