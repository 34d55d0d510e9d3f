/**
 * Node engine behaviour on the shipped pair: self-consistency (closed gates == receiver mode; prefill[:-1] +
 * one step == one full forward), streaming, cancellation and recovery, seeded sampling, progress, bad inputs
 * with typed errors that leave the engine usable. Memory over many generations: memory.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createNodeC2CEngine, nodePlatform } from '../../src/node';
import { CausalLM } from '../../src/models/causal-lm';
import { randomFuserWeights } from '../../src/fuser/random-weights';
import { saveFuserToDirectory } from '../../src/fuser/format/node-io';
import type { C2CEngine, ChatMessage, ProgressEvent } from '../../src/types';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB, pairDims } from './pair';
import { expectAllClose } from '../util/allclose';

describe.skipIf(!PAIR)(`Node engine behaviour${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  const pair = PAIR_OR_STUB;
  const g = pair.golden;
  const c = g.cases[0];
  const msgs: ChatMessage[] = [{ role: 'user', content: c.user }];
  const models = { sharer: { id: 'sharer', localPath: pair.dir }, receiver: { id: 'receiver', localPath: pair.dir } };
  const dims = (role: 'receiver' | 'sharer') => pairDims(pair, role);
  let engine: C2CEngine;
  const progress: ProgressEvent[] = [];
  let tmp: string;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'c2c-engine-'));
    engine = await createNodeC2CEngine({ ...models, fuser: path.join(pair.dir, 'fuser'), onProgress: (e) => progress.push(e) });
  });
  afterAll(async () => {
    await engine?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('progress is aggregated, phase-ordered, monotone within each phase and ends at warm-up 100%', () => {
    const order = ['download', 'compile', 'warmup'];
    expect(progress.length).toBeGreaterThan(0);
    for (let i = 1; i < progress.length; i++) {
      const [a, b] = [progress[i - 1], progress[i]];
      expect(order.indexOf(b.phase)).toBeGreaterThanOrEqual(order.indexOf(a.phase));
      if (a.phase === b.phase) expect(b.progress).toBeGreaterThanOrEqual(a.progress);
    }
    expect(new Set(progress.map((p) => p.phase))).toEqual(new Set(order));
    expect(progress.at(-1)).toMatchObject({ phase: 'warmup', progress: 1 });
  });

  it('c2c with every gate closed equals receiver mode (the fused cache is the receiver cache)', async () => {
    const dir = path.join(tmp, 'closed');
    await saveFuserToDirectory(dir, randomFuserWeights(7, { receiver: dims('receiver'), sharer: dims('sharer'), gateLogit: () => -1 }));
    const closed = await createNodeC2CEngine({ ...models, fuser: dir });
    try {
      for (const k of g.cases) {
        const m: ChatMessage[] = [{ role: 'user', content: k.user }];
        const a = await closed.generate(m, { mode: 'c2c', maxNewTokens: g.max_new_tokens });
        expect(a.tokenIds).toEqual(k.receiver.output_ids);
      }
      // Multi-turn: the whole history (earlier answers included) is prefilled and fused again each call.
      const turns: ChatMessage[] = [
        { role: 'user', content: g.cases[0].user },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: 'Why?' },
      ];
      const [x, y] = [await closed.generate(turns, { mode: 'c2c', maxNewTokens: 6 }),
        await closed.generate(turns, { mode: 'receiver', maxNewTokens: 6 })];
      expect(x.promptIds).toEqual(y.promptIds);
      expect(x.tokenIds).toEqual(y.tokenIds);
    } finally {
      await closed.dispose();
    }
  });

  it('prefill(prompt[:-1]) then one step gives the logits of one full forward', async () => {
    nodePlatform().configureEnv(models.receiver, { device: 'cpu', allowRemoteModels: false, shareDevice: false, topology: 'node' });
    const lm = await CausalLM.load(models.receiver, { device: 'cpu' });
    try {
      const ids = c.prompt_ids;
      const full = await lm.forward(ids, ids.map((_, i) => i), null);
      const kv = await lm.prefillKV(ids.slice(0, -1));
      expect(kv).toHaveLength(lm.info.numLayers);
      expect(kv[0].key.seq).toBe(ids.length - 1);
      const step = await lm.forward([ids.at(-1)!], [ids.length - 1], lm.pastFromKV(kv));
      expectAllClose(step.logits, full.logits, { atol: 1e-4, what: 'one-step logits' });
    } finally {
      await lm.dispose();
    }
  });

  it('stream() yields the tokens of generate() in order, then one done event', async () => {
    const events = [];
    for await (const e of engine.stream(msgs, { mode: 'c2c', maxNewTokens: g.max_new_tokens })) events.push(e);
    const done = events.at(-1)!;
    expect(done.type).toBe('done');
    const tokens = events.filter((e) => e.type === 'token');
    expect(tokens.map((t) => (t.type === 'token' ? t.tokenId : -1))).toEqual(c.c2c.output_ids);
    expect(tokens.map((t, i) => (t.type === 'token' ? t.index : -1))).toEqual(tokens.map((_, i) => i));
    if (done.type === 'done') expect(tokens.map((t) => (t.type === 'token' ? t.text : '')).join('')).toBe(done.result.text);
  });

  it('leaving a stream early stops the generation and the next request is unaffected', async () => {
    let n = 0;
    for await (const e of engine.stream(msgs, { mode: 'receiver', maxNewTokens: g.max_new_tokens })) {
      if (e.type === 'token' && ++n === 1) break;
    }
    const r = await engine.generate(msgs, { mode: 'receiver', maxNewTokens: g.max_new_tokens });
    expect(r.tokenIds).toEqual(c.receiver.output_ids);
  });

  it('cancel mid-decode returns a partial result, then the next generation gives the golden tokens', async () => {
    const ctl = new AbortController();
    const r = await engine.generate(msgs, { mode: 'c2c', maxNewTokens: g.max_new_tokens, signal: ctl.signal,
      onToken: (e) => e.index === 0 && ctl.abort() });
    if (c.c2c.output_ids.length > 1) {
      expect(r.finishReason).toBe('aborted');
      expect(r.tokenIds).toEqual(c.c2c.output_ids.slice(0, 1));
    }
    const again = await engine.generate(msgs, { mode: 'c2c', maxNewTokens: g.max_new_tokens });
    expect(again.tokenIds).toEqual(c.c2c.output_ids);
  });

  it('an already-aborted signal rejects with AbortError before any work', async () => {
    const ctl = new AbortController();
    ctl.abort();
    await expect(engine.generate(msgs, { signal: ctl.signal })).rejects.toMatchObject({ name: 'AbortError', code: 'ABORTED' });
  });

  it('seeded sampling is reproducible and differs from another seed somewhere', async () => {
    const s = (seed: number) => engine.generate(msgs, { mode: 'receiver', maxNewTokens: 8,
      sampling: { temperature: 1.5, topK: 50, topP: 0.95, seed } });
    const [a, b] = [await s(1), await s(1)];
    expect(a.tokenIds).toEqual(b.tokenIds);
    const others = await Promise.all([2, 3, 4, 5].map(s));
    expect(others.some((o) => o.tokenIds.join() !== a.tokenIds.join())).toBe(true);
  });

  it('bad inputs give typed errors and leave the engine usable', async () => {
    await expect(engine.generate([])).rejects.toMatchObject({ name: 'InvalidInputError' });
    await expect(engine.generate([{ role: 'user', content: '' }])).rejects.toMatchObject({ name: 'InvalidInputError' });
    await expect(engine.generate(msgs, { maxNewTokens: 0 })).rejects.toMatchObject(
      { name: 'InvalidInputError', details: { field: 'maxNewTokens' } });
    await expect(engine.generate(msgs, { sampling: { topP: 2 } })).rejects.toMatchObject(
      { name: 'InvalidInputError', details: { field: 'sampling.topP' } });
    const long = 'x '.repeat(4000);
    for (const mode of ['c2c', 'receiver', 'sharer', 'text-relay'] as const) {
      await expect(engine.generate([{ role: 'user', content: long }], { mode })).rejects.toMatchObject(
        { name: 'ContextOverflowError', code: 'CONTEXT_OVERFLOW' });
    }
    const r = await engine.generate(msgs, { mode: 'c2c', maxNewTokens: g.max_new_tokens });
    expect(r.tokenIds).toEqual(c.c2c.output_ids);
  });

  it('an unknown model offline is a ModelLoadError naming it', async () => {
    await expect(createNodeC2CEngine({ ...models, receiver: { id: 'no-such-model', localPath: pair.dir },
      fuser: path.join(pair.dir, 'fuser') })).rejects.toMatchObject({
      name: 'ModelLoadError',
      message: expect.stringContaining('no-such-model'),
    });
  });

  it('an abort during loading rejects with AbortError; a device Node lacks is reported, not silent', async () => {
    const ctl = new AbortController();
    const pending = createNodeC2CEngine({ ...models, fuser: path.join(pair.dir, 'fuser'), signal: ctl.signal });
    ctl.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    const e = await createNodeC2CEngine({ ...models, fuser: path.join(pair.dir, 'fuser'), device: 'webgpu' });
    try {
      expect(e.device.backend).toBe('cpu');
      expect(e.device.fallbackReason).toMatch(/webgpu/);
    } finally {
      await e.dispose();
    }
  });

  it('a fuser that does not fit the pair is a ShapeMismatchError naming the dimension', async () => {
    const r = dims('receiver');
    const dir = path.join(tmp, 'misfit');
    await saveFuserToDirectory(dir, randomFuserWeights(3, { receiver: { ...r, headDim: r.headDim * 2 }, sharer: dims('sharer') }));
    await expect(createNodeC2CEngine({ ...models, fuser: dir })).rejects.toMatchObject(
      { name: 'ShapeMismatchError', details: { field: 'receiver.headDim' } });
    await expect(createNodeC2CEngine({ ...models, fuser: path.join(tmp, 'missing') })).rejects.toMatchObject({ name: 'FuserFormatError' });
  });
});
