/**
 * The local OpenAI-compatible server, driven by the official `openai` npm client against the Node engine on
 * the shipped pair: model list, JSON and SSE completions (usage on the last chunk), OpenAI-style errors with
 * 400/404/405/413, a client disconnect aborting its generation, and concurrent requests queued without
 * interleaving (each answer equals the one it gets alone).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { createNodeC2CEngine } from '../../src/node';
import { createChatCompletions } from '../../src/engine/openai';
import { createOpenAIServer } from '../../src/server/openai-server';
import type { C2CEngine, StreamEvent } from '../../src/types';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB, pairOptions } from '../engine/pair';

describe.skipIf(!PAIR)(`OpenAI-compatible server${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  const pair = PAIR_OR_STUB;
  const g = pair.golden;
  let engine: C2CEngine;
  let server: ReturnType<typeof createOpenAIServer>;
  let base: string;
  let client: OpenAI;
  /** Every engine event, tagged with the request it belongs to (in arrival order). */
  const log: { request: number; type: StreamEvent['type']; finish?: string }[] = [];
  let nextRequest = 0;

  beforeAll(async () => {
    engine = await createNodeC2CEngine({ name: 'c2c-tiny', ...pairOptions(pair.dir) });
    // The server sees the real engine through a recorder of its stream events.
    const recorded = {
      modelId: engine.modelId,
      generate: engine.generate.bind(engine),
      async *stream(m: Parameters<C2CEngine['stream']>[0], o?: Parameters<C2CEngine['stream']>[1]) {
        const request = nextRequest++;
        for await (const ev of engine.stream(m, o)) {
          log.push({ request, type: ev.type, finish: ev.type === 'done' ? ev.result.finishReason : undefined });
          yield ev;
        }
      },
    };
    server = createOpenAIServer({ modelId: engine.modelId, chat: { completions: createChatCompletions(recorded) } },
      { maxBodyBytes: 64 * 1024 });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    client = new OpenAI({ baseURL: base, apiKey: 'not-needed', maxRetries: 0 });
  });
  afterAll(async () => {
    await new Promise<void>((ok) => {
      server?.close(() => ok());
      server?.closeAllConnections();
    });
    await engine?.dispose();
  });

  const ask = (content: string) => [{ role: 'user' as const, content }];

  it('lists the pair and its single-model and relay variants', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(['c2c-tiny', 'c2c-tiny/receiver', 'c2c-tiny/sharer', 'c2c-tiny/text-relay']);
  });

  it('answers JSON completions with the engine tokens, every model id selecting its mode', async () => {
    const c = g.cases[0];
    const want = { 'c2c-tiny': c.c2c.output_ids, 'c2c-tiny/receiver': c.receiver.output_ids, 'c2c-tiny/sharer': c.sharer.output_ids };
    for (const [model, ids] of Object.entries(want)) {
      const r = await client.chat.completions.create({ model, messages: ask(c.user), temperature: 0, max_tokens: g.max_new_tokens });
      expect(r.model).toBe(model);
      expect(r.usage?.completion_tokens).toBe(ids.length);
      const mode = model.includes('/') ? (model.split('/')[1] as 'receiver' | 'sharer') : 'c2c';
      expect(r.choices[0].message.content).toBe((await engine.generate(ask(c.user), { mode, maxNewTokens: g.max_new_tokens })).text);
    }
  });

  it('streams SSE chunks the client parses, usage on the last one', async () => {
    const c = g.cases[1];
    const whole = await client.chat.completions.create({ model: 'c2c-tiny', messages: ask(c.user), temperature: 0, max_tokens: 8 });
    const stream = await client.chat.completions.create({ model: 'c2c-tiny', messages: ask(c.user), temperature: 0, max_tokens: 8,
      stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const ch of stream) {
      text += ch.choices[0]?.delta.content ?? '';
      if (ch.usage) usage = ch.usage;
    }
    expect(text).toBe(whole.choices[0].message.content);
    expect(usage?.total_tokens).toBe(whole.usage?.total_tokens);
  });

  it('maps bad requests to OpenAI error bodies: 404 unknown model, 400 bad fields, 405, 413', async () => {
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages: ask('hi') })).rejects.toMatchObject(
      { status: 404, code: 'model_not_found' });
    await expect(client.chat.completions.create({ model: 'c2c-tiny', messages: [] })).rejects.toMatchObject(
      { status: 400, param: 'messages' });
    await expect(client.chat.completions.create({ model: 'c2c-tiny', messages: ask('hi'), n: 3 })).rejects.toMatchObject(
      { status: 400, param: 'n' });
    const huge = await fetch(`${base}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'c2c-tiny', messages: ask('x'.repeat(100_000)) }) });
    expect(huge.status).toBe(413);
    expect((await huge.json()).error.code).toBe('request_too_large');
    const notJson = await fetch(`${base}/chat/completions`, { method: 'POST', body: '{oops' });
    expect(notJson.status).toBe(400);
    expect((await notJson.json()).error.type).toBe('invalid_request_error');
    expect((await fetch(`${base}/chat/completions`)).status).toBe(405);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    // The engine is still fine afterwards.
    const ok = await client.chat.completions.create({ model: 'c2c-tiny', messages: ask(g.cases[0].user), temperature: 0,
      max_tokens: g.max_new_tokens });
    expect(ok.usage?.completion_tokens).toBe(g.cases[0].c2c.output_ids.length);
  });

  it('a client that disconnects mid-stream aborts its generation', async () => {
    // A seeded sample that would run long: the tiny receiver usually ends at once, so sample hot (temperature 5) and
    // take the first of 50 seeds whose answer runs 40 tokens or more.
    const sampleLength = async (seed: number) => (await engine.generate(ask('Tell me about Mibrar.'),
      { mode: 'receiver', maxNewTokens: 200, sampling: { temperature: 5, seed } })).tokenIds.length;
    let seed = 0;
    while (seed < 50 && (await sampleLength(seed)) < 40) seed++;
    expect(seed, 'no seed in 0..49 gives a 40-token sample').toBeLessThan(50);
    const ctl = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'c2c-tiny/receiver', messages: ask('Tell me about Mibrar.'), temperature: 5, seed, max_tokens: 200, stream: true },
      { signal: ctl.signal },
    );
    const before = log.length;
    let chunks = 0;
    try {
      for await (const ch of stream) {
        if (ch.choices[0]?.delta.content && ++chunks === 2) ctl.abort();
      }
    } catch {
      // the client reports its own abort
    }
    // The server's generation ends as 'aborted' (or with an AbortError before any done event).
    for (let i = 0; i < 100 && !log.slice(before).some((e) => e.type === 'done'); i++) await new Promise((r) => setTimeout(r, 20));
    const done = log.slice(before).find((e) => e.type === 'done');
    expect(done?.finish).toBe('aborted');
    const tokens = log.slice(before).filter((e) => e.type === 'token').length;
    expect(tokens).toBeLessThan(200);
  });

  it('concurrent requests queue: each answer equals its answer alone, and their events never interleave', async () => {
    const prompts = g.cases.slice(0, 3).map((c) => c.user);
    const alone = [];
    for (const p of prompts) alone.push((await client.chat.completions.create(
      { model: 'c2c-tiny', messages: ask(p), temperature: 0, max_tokens: 8 })).choices[0].message.content);
    const before = log.length;
    const together = await Promise.all(
      prompts.map(async (p) => {
        let text = '';
        for await (const ch of await client.chat.completions.create(
          { model: 'c2c-tiny', messages: ask(p), temperature: 0, max_tokens: 8, stream: true })) text += ch.choices[0]?.delta.content ?? '';
        return text;
      }),
    );
    expect(together).toEqual(alone);
    const order = log.slice(before).map((e) => e.request);
    // Each request's events form one contiguous run.
    const runs = order.filter((r, i) => i === 0 || r !== order[i - 1]);
    expect(new Set(runs).size).toBe(runs.length);
    expect(runs.length).toBe(prompts.length);
  });
});
