/**
 * Unit tests of the engine's pure parts (no model): sampling, progress aggregation, text-relay prompts,
 * KV conversion, and the comlink transfer handlers (error classes and AbortSignals across a MessageChannel).
 */
import { describe, expect, it } from 'vitest';
import { transferHandlers } from 'comlink';
import { TokenSampler, applyRepetitionPenalty, argmax, createRng } from '../../src/engine/sampling';
import { ProgressAggregator } from '../../src/engine/progress';
import { extractQuestion, relayReceiverMessages, relaySharerMessages } from '../../src/engine/relay';
import { kvCacheToPast, kvTransferables, presentToKVCache } from '../../src/kv/convert';
import { sliceSeq } from '../../src/kv/ops';
import { installTransferHandlers } from '../../src/engine/transfer';
import { validateMessages } from '../../src/engine/engine';
import { checkFuserFitsPair } from '../../src/engine/assemble';
import { randomFuserConfig } from '../../src/fuser/random-weights';
import { ContextOverflowError, FuserFormatError } from '../../src/errors';
import type { ProgressEvent } from '../../src/engine/types';

describe('sampling', () => {
  const logits = () => Float32Array.from([0.1, 2.0, -1.0, 1.9, 0.5]);

  it('greedy picks the argmax, lowest id on ties', () => {
    expect(new TokenSampler().next(logits(), [])).toBe(1);
    expect(argmax(Float32Array.from([3, 1, 3]))).toBe(0);
  });

  it('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
    const l = logits();
    applyRepetitionPenalty(l, [1, 2, 1], 2);
    expect(Array.from(l)).toEqual([Float32Array.from([0.1])[0], 1.0, -2.0, Float32Array.from([1.9])[0], 0.5]);
    expect(new TokenSampler({ repetitionPenalty: 2 }).next(logits(), [1])).toBe(3);
  });

  it('top-k 1 and a tiny top-p both reduce sampling to greedy', () => {
    for (let seed = 0; seed < 20; seed++) {
      expect(new TokenSampler({ temperature: 5, topK: 1, seed }).next(logits(), [])).toBe(1);
      expect(new TokenSampler({ temperature: 5, topP: 1e-6, seed }).next(logits(), [])).toBe(1);
    }
  });

  it('top-k restricts the support and the frequencies follow the softmax', () => {
    const s = new TokenSampler({ temperature: 1, topK: 2, seed: 42 });
    const counts = [0, 0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[s.next(logits(), [])]++;
    expect(counts[0] + counts[2] + counts[4]).toBe(0);
    const p1 = Math.exp(2.0) / (Math.exp(2.0) + Math.exp(1.9));
    expect(counts[1] / 4000).toBeGreaterThan(p1 - 0.04);
    expect(counts[1] / 4000).toBeLessThan(p1 + 0.04);
  });

  it('the same seed gives the same sequence; the rng is uniform-ish in [0, 1)', () => {
    const a = createRng(9), b = createRng(9);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.reduce((p, x) => p + x, 0) / 1000).toBeCloseTo(0.5, 1);
  });

  it('rejects invalid options with the field named', () => {
    expect(() => new TokenSampler({ temperature: -1 })).toThrow(/sampling.temperature/);
    expect(() => new TokenSampler({ topP: 0 })).toThrow(/sampling.topP/);
    expect(() => new TokenSampler({ topK: 1.5 })).toThrow(/sampling.topK/);
  });
});

describe('progress aggregation', () => {
  it('sums bytes over files, never goes back, closes each phase and ends at warm-up 100%', () => {
    const ev: ProgressEvent[] = [];
    const agg = new ProgressAggregator(3, (e) => ev.push(e));
    agg.report({ role: 'sharer', phase: 'download', file: 'a', loaded: 50, total: 100 });
    agg.report({ role: 'receiver', phase: 'download', file: 'b', loaded: 0, total: 300 }); // total grows: 50/400 < 50/100
    agg.report({ role: 'receiver', phase: 'download', file: 'b', loaded: 300, total: 300 });
    agg.report({ role: 'sharer', phase: 'compile', loaded: 1, total: 1 });
    agg.report({ role: 'sharer', phase: 'download', file: 'a', loaded: 100, total: 100 }); // late: ignored
    agg.report({ role: 'sharer', phase: 'warmup', loaded: 1, total: 1 });
    agg.finish();
    const phases = ev.map((e) => e.phase);
    expect(phases.indexOf('compile')).toBeGreaterThan(phases.lastIndexOf('download'));
    for (let i = 1; i < ev.length; i++) if (ev[i].phase === ev[i - 1].phase) expect(ev[i].progress).toBeGreaterThanOrEqual(ev[i - 1].progress);
    expect(ev.filter((e) => e.progress === 1).map((e) => e.phase)).toEqual(['download', 'compile', 'warmup']);
    expect(ev[0]).toMatchObject({ phase: 'download', loaded: 50, total: 100, progress: 0.5 });
  });
});

describe('text relay prompts (train/world.py wording)', () => {
  it('extracts the question from both item types', () => {
    expect(extractQuestion('Which city does Bo live in?\nAnswer with one word.')).toBe('Which city does Bo live in?');
    expect(extractQuestion('Question: What pet does Bo have?\nA. cat\nB. dog\nAnswer with the letter.')).toBe('What pet does Bo have?');
  });

  it('builds the sharer request and appends the hint to the last user message only', () => {
    const m = [
      { role: 'user' as const, content: 'earlier' },
      { role: 'assistant' as const, content: 'ok' },
      { role: 'user' as const, content: 'What is the job of Bo?\nAnswer with one word.' },
    ];
    expect(relaySharerMessages(m)).toEqual([{ role: 'user', content: 'Write a hint for: What is the job of Bo?' }]);
    const r = relayReceiverMessages(m, 'Bo is a {hint} pilot.');
    expect(r[0]).toEqual(m[0]);
    expect(r[2].content).toBe('What is the job of Bo?\nAnswer with one word.\nHint: Bo is a {hint} pilot.');
  });
});

describe('KV conversion', () => {
  const t = (seq: number, base: number) => ({ data: Float32Array.from({ length: 2 * seq * 3 }, (_, i) => base + i), heads: 2, seq, headDim: 3 });

  it('present.* → KVCache copies with batch dim dropped; past tensors view the same data', async () => {
    const data = Float32Array.from({ length: 12 }, (_, i) => i);
    const outputs = {
      'present.0.key': { type: 'float32', dims: [1, 2, 2, 3], data },
      'present.0.value': { type: 'float32', dims: [1, 2, 2, 3], data: data.map((x) => -x) },
    };
    const kv = await presentToKVCache(outputs, 1);
    expect(kv[0].key).toMatchObject({ heads: 2, seq: 2, headDim: 3 });
    expect(Array.from(kv[0].value.data)).toEqual(Array.from(data, (x) => -x));
    expect(kv[0].key.data).not.toBe(data);
    const past = kvCacheToPast(kv, (type, d, dims) => ({ type, d, dims }));
    expect(past['past_key_values.0.key']).toEqual({ type: 'float32', d: kv[0].key.data, dims: [1, 2, 2, 3] });
    expect(kvTransferables(kv)).toHaveLength(2);
  });

  it('rejects a missing layer, a batch of 2 and a wrong dtype, naming the tensor', async () => {
    await expect(presentToKVCache({}, 1)).rejects.toThrow(/present.0.key/);
    const bad = { 'present.0.key': { type: 'float32', dims: [2, 1, 1, 1], data: new Float32Array(2) }, 'present.0.value': { type: 'float32', dims: [2, 1, 1, 1], data: new Float32Array(2) } };
    await expect(presentToKVCache(bad, 1)).rejects.toMatchObject({ name: 'ShapeMismatchError', details: { tensor: 'present.0.key' } });
    const f16 = { 'present.0.key': { type: 'float16', dims: [1, 1, 1, 1], data: new Uint16Array(1) }, 'present.0.value': { type: 'float16', dims: [1, 1, 1, 1], data: new Uint16Array(1) } };
    await expect(presentToKVCache(f16, 1)).rejects.toThrow(/float16/);
  });

  it('sliceSeq takes tokens [start, end) of every head', () => {
    const s = sliceSeq(t(4, 0), 1, 3);
    expect(s.seq).toBe(2);
    // head 0 tokens 1,2 → values 3..8; head 1 tokens 1,2 → 15..20
    expect(Array.from(s.data)).toEqual([3, 4, 5, 6, 7, 8, 15, 16, 17, 18, 19, 20]);
  });
});

describe('transfer handlers', () => {
  installTransferHandlers();
  const h = (name: string) => transferHandlers.get(name)!;

  it('errors keep their class and details through structured clone', () => {
    const [wire] = h('throw').serialize({ value: new FuserFormatError('bad hidden_dim', { field: 'hidden_dim' }) } as never);
    try {
      h('throw').deserialize(structuredClone(wire));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(FuserFormatError);
      expect((e as FuserFormatError).details).toEqual({ field: 'hidden_dim' });
    }
  });

  it('an AbortSignal becomes a port; aborting the original aborts the mirror', async () => {
    const ctl = new AbortController();
    expect(h('abort-signal').canHandle(ctl.signal)).toBe(true);
    const [port] = h('abort-signal').serialize(ctl.signal);
    const mirror = h('abort-signal').deserialize(port) as AbortSignal;
    expect(mirror.aborted).toBe(false);
    const fired = new Promise((r) => mirror.addEventListener('abort', r));
    ctl.abort(new Error('stop'));
    await fired;
    expect(mirror.aborted).toBe(true);
  });
});

describe('input and pair checks', () => {
  it('validateMessages names the bad message', () => {
    expect(() => validateMessages([])).toThrow(/non-empty/);
    expect(() => validateMessages([{ role: 'robot', content: 'x' }])).toThrow(/messages\[0\]/);
    expect(() => validateMessages([{ role: 'system', content: 'x' }])).toThrow(/user message/);
    expect(() => validateMessages([{ role: 'user', content: 'hi' }])).not.toThrow();
  });

  it('checkFuserFitsPair names the first dimension that differs', () => {
    const cfg = randomFuserConfig({ receiver: { numLayers: 4, kvHeads: 2, headDim: 32 }, sharer: { numLayers: 3, kvHeads: 4, headDim: 16 } });
    const info = (numLayers: number, kvHeads: number, headDim: number) => ({ id: 'm', numLayers, kvHeads, headDim, vocabSize: 10, maxPositions: 10, eosIds: [], padId: null, unkId: null });
    expect(() => checkFuserFitsPair(cfg, { receiver: info(4, 2, 32), sharer: info(3, 4, 16) })).not.toThrow();
    expect(() => checkFuserFitsPair(cfg, { receiver: info(4, 2, 32), sharer: info(3, 2, 16) })).toThrow(/sharer.kvHeads = 4/);
    expect(new ContextOverflowError('x').code).toBe('CONTEXT_OVERFLOW');
  });
});

describe('browser platform device resolution (run in Node: no navigator.gpu)', () => {
  it('falls back to wasm and says why, never silently', async () => {
    const { browserPlatform } = await import('../../src/engine/browser-platform');
    const init = { allowRemoteModels: false, shareDevice: false, topology: 'workers' as const };
    const auto = await browserPlatform().resolveDevice({ ...init, device: 'auto' });
    expect(auto.backend).toBe('wasm');
    expect(auto.fallbackReason).toMatch(/WebGPU unavailable.*navigator\.gpu/);
    const cpu = await browserPlatform().resolveDevice({ ...init, device: 'cpu' });
    expect(cpu).toMatchObject({ backend: 'wasm', fallbackReason: expect.stringContaining('Node-only') });
    const wasm = await browserPlatform().resolveDevice({ ...init, device: 'wasm' });
    expect(wasm.fallbackReason).toBeUndefined();
  });
});
