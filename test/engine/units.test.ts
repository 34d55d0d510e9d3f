/**
 * Unit tests of the engine's pure parts (no model): sampling, progress aggregation, text-relay prompts,
 * KV conversion, and the comlink transfer handlers (error classes and AbortSignals across a MessageChannel).
 */
import { describe, expect, it, vi } from 'vitest';
import { transferHandlers } from 'comlink';
import { TokenSampler, applyRepetitionPenalty, argmax, createRng } from '../../src/hosts/sampling';
import { ProgressAggregator } from '../../src/engine/progress';
import { extractQuestion, relayReceiverMessages, relaySharerMessages } from '../../src/engine/relay';
import { kvCacheToPast, kvTransferables, presentToKVCache } from '../../src/kv/convert';
import { sliceSeq } from '../../src/kv/ops';
import { installTransferHandlers } from '../../src/hosts/transfer';
import { validateMessages } from '../../src/engine/validate';
import { checkFuserFitsPair } from '../../src/engine/assemble';
import { outOfMemoryHint } from '../../src/models/causal-lm';
import { randomFuserConfig, randomFuserWeights } from '../../src/fuser/random-weights';
import { ContextOverflowError, FuserFormatError } from '../../src/errors';
import type { ProgressEvent } from '../../src/types';

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

  /** The plain definition: sort every finite logit, cut by top-k, softmax, nucleus cut, one draw. */
  function sampleBySortingAll(l: Float32Array, o: { temperature: number; topK?: number; topP?: number }, u: number): number {
    let idx = Array.from(l.keys()).filter((i) => Number.isFinite(l[i]));
    idx.sort((a, b) => l[b] - l[a] || a - b);
    if (o.topK && o.topK < idx.length) idx = idx.slice(0, o.topK);
    const p = idx.map((i) => Math.exp((l[i] - l[idx[0]]) / o.temperature));
    const z = p.reduce((a, b) => a + b, 0);
    let keep = idx.length;
    if ((o.topP ?? 1) < 1) {
      let cum = 0;
      for (let k = 0; k < idx.length; k++) if ((cum += p[k] / z) >= o.topP!) { keep = k + 1; break; }
    }
    let t = u * p.slice(0, keep).reduce((a, b) => a + b, 0);
    for (let k = 0; k < keep; k++) if ((t -= p[k]) < 0) return idx[k];
    return idx[keep - 1];
  }

  it('sampling from a sorted prefix gives the tokens of sorting the whole vocabulary (ties, -inf, top-k/top-p)', () => {
    const rand = createRng(5);
    const settings = [{ temperature: 1 }, { temperature: 0.7, topP: 0.9 }, { temperature: 1.3, topK: 40 },
      { temperature: 2, topK: 300, topP: 0.5 }, { temperature: 0.3, topP: 0.999 }];
    let checked = 0;
    for (let trial = 0; trial < 60; trial++) {
      const v = 50 + Math.floor(rand() * 3000);
      // Peaked or flat, with repeated values (ties) and masked (-inf) entries.
      const scale = trial % 3 === 0 ? 0.2 : 6;
      const l = Float32Array.from({ length: v }, () => (rand() < 0.05 ? -Infinity : Math.round(rand() * 40) / 40 * scale));
      for (const o of settings) {
        const seed = trial * 7 + checked;
        const u = createRng(seed)(); // the sampler's single draw for its first token
        expect(new TokenSampler({ ...o, seed }).next(l.slice(), []), `trial ${trial} ${JSON.stringify(o)}`).toBe(
          sampleBySortingAll(l, o, u));
        checked++;
      }
    }
    expect(checked).toBe(300);
  });

  it('does not sort the whole vocabulary for peaked logits (a Qwen-sized vocab, top-p 0.9)', () => {
    const rand = createRng(11);
    const l = Float32Array.from({ length: 151936 }, () => rand() * 4);
    for (let i = 0; i < 8; i++) l[i * 997] = 25 - i; // a few clear favourites, as real LM logits have
    const s = new TokenSampler({ temperature: 0.7, topP: 0.9, seed: 1 });
    s.next(l, []);
    expect(s.lastSortedCandidates).toBeLessThanOrEqual(64);
    const flat = new TokenSampler({ temperature: 1, seed: 1 });
    flat.next(Float32Array.from({ length: 1000 }, () => 1), []);
    expect(flat.lastSortedCandidates).toBeGreaterThan(64); // a flat draw may need the long tail: the prefix grows
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
    for (let i = 1; i < ev.length; i++) if (ev[i].phase === ev[i - 1].phase) expect(ev[i].progress).toBeGreaterThanOrEqual(
      ev[i - 1].progress);
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
  const t = (seq: number, base: number) => ({ data: Float32Array.from({ length: 2 * seq * 3 }, (_, i) => base + i), heads: 2, seq,
    headDim: 3 });

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
    const bad = { 'present.0.key': { type: 'float32', dims: [2, 1, 1, 1], data: new Float32Array(2) },
      'present.0.value': { type: 'float32', dims: [2, 1, 1, 1], data: new Float32Array(2) } };
    await expect(presentToKVCache(bad, 1)).rejects.toMatchObject({ name: 'ShapeMismatchError', details: { tensor: 'present.0.key' } });
    const i8 = { 'present.0.key': { type: 'int8', dims: [1, 1, 1, 1], data: new Int8Array(1) },
      'present.0.value': { type: 'int8', dims: [1, 1, 1, 1], data: new Int8Array(1) } };
    await expect(presentToKVCache(i8, 1)).rejects.toMatchObject({ name: 'ShapeMismatchError', details: { tensor: 'present.0.key' } });
    // float16 KV (fp16 / q4f16 exports) is read as it is: Uint16 bits, never widened.
    const f16 = { 'present.0.key': { type: 'float16', dims: [1, 1, 1, 1], data: new Uint16Array(1) },
      'present.0.value': { type: 'float16', dims: [1, 1, 1, 1], data: new Uint16Array(1) } };
    const kv = await presentToKVCache(f16, 1);
    expect(kv[0].key).toMatchObject({ dtype: 'float16', data: new Uint16Array(1) });
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
    const cfg = randomFuserConfig({ receiver: { numLayers: 4, kvHeads: 2, headDim: 32 },
      sharer: { numLayers: 3, kvHeads: 4, headDim: 16 } });
    const info = (numLayers: number, kvHeads: number, headDim: number) => (
      { id: 'm', numLayers, kvHeads, headDim, vocabSize: 10, maxPositions: 10, eosIds: [], padId: null, unkId: null });
    expect(() => checkFuserFitsPair(cfg, { receiver: info(4, 2, 32), sharer: info(3, 4, 16) })).not.toThrow();
    expect(() => checkFuserFitsPair(cfg, { receiver: info(4, 2, 32), sharer: info(3, 2, 16) })).toThrow(/sharer.kvHeads = 4/);
    expect(new ContextOverflowError('x').code).toBe('CONTEXT_OVERFLOW');
  });
});

describe('browser platform device and fuser resolution (run in Node: no navigator.gpu)', () => {
  it('falls back to wasm and says why, never silently', async () => {
    const { browserPlatform } = await import('../../src/hosts/browser-platform');
    const init = { allowRemoteModels: false, shareDevice: false, topology: 'workers' as const };
    const auto = await browserPlatform().resolveDevice({ ...init, device: 'auto' });
    expect(auto.backend).toBe('wasm');
    expect(auto.fallbackReason).toMatch(/WebGPU unavailable.*navigator\.gpu/);
    const cpu = await browserPlatform().resolveDevice({ ...init, device: 'cpu' });
    expect(cpu).toMatchObject({ backend: 'wasm', fallbackReason: expect.stringContaining('Node-only') });
    const wasm = await browserPlatform().resolveDevice({ ...init, device: 'wasm' });
    expect(wasm.fallbackReason).toBeUndefined();
  });

  it('a WebGPU fuser that cannot be built on the device falls back to the CPU fuser and says why', async () => {
    const { browserPlatform } = await import('../../src/hosts/browser-platform');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const platform = browserPlatform();
      await platform.resolveDevice({ device: 'wasm', allowRemoteModels: false, shareDevice: true, topology: 'single',
        cpuFuser: 'reference' });
      // A device that cannot take the fuser (no limits, no features). The real case runs in test/browser-engine.
      const broken = { limits: {}, features: new Set(), lost: new Promise(() => undefined) } as unknown as GPUDevice;
      const weights = randomFuserWeights(5);
      const { fuser, fallbackReason } = await platform.createFuser(weights, { backend: 'webgpu', shaderF16: false, gpuDevice: broken });
      expect(fuser.backend).toBe('cpu');
      expect(fallbackReason).toMatch(/^WebGPU fuser failed, using the CPU fuser: ./);
      expect(warn).toHaveBeenCalledWith(fallbackReason);
      expect((await platform.createFuser(weights, { backend: 'wasm', shaderF16: false })).fallbackReason).toBeUndefined();
    } finally {
      warn.mockRestore();
    }
  });
});

describe('model load errors', () => {
  it('an allocation failure on wasm names the 4 GiB heap and the dtypes that fit; other errors get no hint', () => {
    const wasm = outOfMemoryHint("Can't create a session. ERROR_CODE: 6, ERROR_MESSAGE: std::bad_alloc", 'wasm');
    expect(wasm).toMatch(/4 GiB.*'q8'/);
    expect(outOfMemoryHint('std::bad_alloc', 'cpu')).toMatch(/smaller dtype/);
    expect(outOfMemoryHint('Unable to get model file path or buffer.', 'wasm')).toBe('');
  });
});
