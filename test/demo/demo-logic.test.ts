/**
 * Pure logic behind the demo and the benchmark: percentiles and per-mode summaries, the headline ratios,
 * the PyTorch report reader, the pair manifest reader, the eval-set parser, the answer rule and the
 * terminal table's mismatch flag, the paper-comparison lines, the device line with both fallback reasons. DOM and
 * browser parts are covered by e2e/.
 */
import { describe, expect, it } from 'vitest';
import { buildRun, percentile, summarise, type BenchItemResult } from '../../src/demo/bench-core';
import { parseEvalJsonl, scoreAnswer } from '../../src/demo/eval-set';
import { pairFromManifest, unavailableReason, HUB_PAIRS } from '../../src/demo/pairs';
import { referenceAccuracies } from '../../src/demo/reference';
import { formatTable } from '../../bench/format.mjs';
import { accuracyMatch, describeDevice, ratioLines } from '../../src/demo/report';
import type { DeviceReport, GenerationMode } from '../../src/types';

const device: DeviceReport = {
  backend: 'wasm', fuserBackend: 'cpu', shaderF16: false, topology: 'workers', prefixReuse: true,
  models: { receiver: { modelDType: 'fp32', kvDType: 'float32' }, sharer: { modelDType: 'fp32', kvDType: 'float32' } },
};

function row(item: number, mode: GenerationMode, totalMs: number, correct: boolean): BenchItemResult {
  return {
    item, mode, text: correct ? 'Oslo' : 'Lima', tokenIds: [5], expected: 'Oslo', correct,
    timing: { sharerPrefillMs: 1, receiverPrefillMs: 2, fuseMs: mode === 'c2c' ? 0.5 : 0, relayMs: mode === 'text-relay' ? 30 : 0,
      ttftMs: 3, decodeMs: 4, decodeTokensPerS: 250, totalMs },
  };
}

describe('bench statistics', () => {
  it('nearest-rank percentiles', () => {
    const v = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5];
    expect(percentile(v, 50)).toBe(5);
    expect(percentile(v, 90)).toBe(9);
    expect(percentile(v, 100)).toBe(10);
    expect(percentile([42], 90)).toBe(42);
    expect(percentile([], 90)).toBeNaN();
  });

  it('summarises accuracy and latency per mode and derives the two headline ratios', () => {
    const results = [
      row(0, 'receiver', 10, false), row(1, 'receiver', 30, true),
      row(0, 'text-relay', 100, true), row(1, 'text-relay', 140, true),
      row(0, 'c2c', 20, true), row(1, 'c2c', 20, false),
    ];
    const s = summarise('text-relay', results);
    expect(s).toMatchObject({ n: 2, correct: 2, accuracy: 1, meanMs: 120, p90Ms: 140 });
    expect(s.stages.relayMs).toBe(30);
    const run = buildRun({ pair: 'p', engineKind: 'real', device, modes: ['receiver', 'text-relay', 'c2c'], items: 2,
      maxNewTokens: 8, warmup: true, startedAt: '', wallMs: 1, results });
    expect(run.c2cSpeedupOverRelay).toBeCloseTo(6, 10);
    expect(run.c2cOverReceiver).toBeCloseTo(1, 10);
    const noRelay = buildRun({ ...run, modes: ['receiver', 'c2c'], results: results.filter((r) => r.mode !== 'text-relay') });
    expect(noRelay.c2cSpeedupOverRelay).toBeNull();
  });

  it('reports the text relay\'s hint lengths (mean, max, cap) and none for the other modes', () => {
    const results = [{ ...row(0, 'text-relay', 100, true), hintTokens: 9 }, { ...row(1, 'text-relay', 100, true), hintTokens: 14 },
      row(0, 'c2c', 20, true)];
    const run = buildRun({ pair: 'p', engineKind: 'real', device, modes: ['text-relay', 'c2c'], items: 2, maxNewTokens: 8,
      relayMaxTokens: 256, warmup: true, startedAt: '', wallMs: 1, results });
    expect(run.summaries[0]).toMatchObject({ meanHintTokens: 11.5, maxHintTokens: 14 });
    expect(run.summaries[1].meanHintTokens).toBeUndefined();
    expect(formatTable(run)).toContain('11.5 hint tokens on average (max 14, cap 256)');
  });

  it('the terminal table flags accuracy mismatches on the full set only', () => {
    const results = [row(0, 'receiver', 10, true), row(1, 'receiver', 10, false), row(0, 'c2c', 10, true), row(1, 'c2c', 10, true)];
    const run = buildRun({ pair: 'p', engineKind: 'real', device, modes: ['receiver', 'c2c'], items: 2, maxNewTokens: 8,
      warmup: true, startedAt: '', wallMs: 1, results });
    const full = formatTable(run, { receiver: 0.5, c2c: 0.5 }, 2);
    expect(full).toMatch(/receiver alone.*match/);
    expect(full).toMatch(/C2C.*MISMATCH/);
    expect(formatTable(run, { receiver: 0.5, c2c: 0.5 }, 10)).not.toContain('MISMATCH');
  });

  it('matches the report to its 4-decimal rounding, and one item off is a mismatch', () => {
    // 35/240 = 0.145833…, which models/report.json stores as 0.1458; 34/240 or 36/240 are ≥ 0.004 away.
    const results = Array.from({ length: 240 }, (_, i) => row(i, 'receiver', 10, i < 35));
    const run = buildRun({ pair: 'p', engineKind: 'real', device, modes: ['receiver'], items: 240, maxNewTokens: 8,
      warmup: true, startedAt: '', wallMs: 1, results });
    expect(formatTable(run, { receiver: 0.1458 }, 240)).toMatch(/receiver alone.*\bmatch/);
    expect(accuracyMatch(run, 'receiver', { receiver: 0.1458 }, 240)).toBe('match');
    for (const off of [34 / 240, 36 / 240, 0.1457, 0.1459]) {
      expect(formatTable(run, { receiver: off }, 240), String(off)).toContain('MISMATCH');
      expect(accuracyMatch(run, 'receiver', { receiver: off }, 240), String(off)).toBe('MISMATCH');
    }
  });
});

describe('paper comparison', () => {
  it('prints the measured figures with the device beside the paper\'s, never a pass/fail goal', () => {
    const results = [row(0, 'receiver', 10, false), row(0, 'text-relay', 60, true), row(0, 'c2c', 20, true)];
    const run = buildRun({ pair: 'p', engineKind: 'real', device, modes: ['receiver', 'text-relay', 'c2c'], items: 1,
      maxNewTokens: 8, warmup: true, startedAt: '', wallMs: 1, results });
    const lines = ratioLines(run);
    expect(lines).toEqual([
      'C2C accuracy vs receiver alone: +100.0 points here on wasm (paper: +8.5–10.5% over single models)',
      'C2C accuracy vs text relay: +0.0 points here on wasm (paper: +3–5%)',
      'C2C speedup over text relay: 3.00× here on wasm (paper, one NVIDIA A100, batch 1: about 2×; Table 3: 1,596 → 445 ms)',
      'C2C latency / receiver alone: 2.00× here on wasm (paper Table 3: 445 / 308 ms = 1.44×; '
        + 'fusion 90 ms vs receiver prefill 27 ms)',
    ]);
    const table = formatTable(run, {}, 1);
    for (const l of lines) expect(table).toContain(l);
    expect(table).not.toMatch(/goal|NOT met/);
    const gpu = ratioLines({ ...run, device: { ...device, backend: 'webgpu',
      adapter: { vendor: 'google', architecture: 'swiftshader', description: '', isFallbackAdapter: true } } });
    expect(gpu[2]).toContain('here on webgpu on google/swiftshader');
  });
});

describe('device line', () => {
  it('names the models\' and the fuser\'s fallback reasons, and neither when there is none', () => {
    const line = describeDevice({ ...device, backend: 'webgpu', fallbackReason: 'no adapter',
      fuserFallbackReason: 'WebGPU fuser failed: boom' });
    expect(line).toContain('(fallback: no adapter)');
    expect(line).toContain('(fuser fallback: WebGPU fuser failed: boom)');
    expect(describeDevice(device)).not.toMatch(/fallback/);
  });
});

describe('PyTorch report reader', () => {
  it('reads the test split\'s accuracies (not validation\'s) with the text_relay alias', () => {
    const block = (r: number, c: number) => ({ receiver: { accuracy: r, n: 48 }, sharer: { accuracy: 0.1, n: 48 },
      text_relay: { accuracy: 0.5, n: 48 }, c2c: { accuracy: c, n: 48 }, hint_exact: 0.4 });
    const report = { pair: 'c2c-tiny', params: { seed: 1 }, eval: { validation: block(0.3, 0.8), test: block(0.25, 0.75) } };
    expect(referenceAccuracies(report)).toEqual({ receiver: 0.25, sharer: 0.1, 'text-relay': 0.5, c2c: 0.75 });
  });

  it('accepts percentages and flat maps, and returns {} when nothing matches', () => {
    expect(referenceAccuracies({ accuracy: { receiver: 25, c2c: 75 } })).toEqual({ receiver: 0.25, c2c: 0.75 });
    expect(referenceAccuracies({ foo: { bar: 1 } })).toEqual({});
    expect(referenceAccuracies(null)).toEqual({});
  });
});

describe('pair manifest', () => {
  const manifest = { name: 'c2c-tiny', receiver: 'receiver', sharer: 'sharer', fuser: 'fuser',
    eval: { set: 'eval_test.jsonl', greedy: true, max_new_tokens: 8, hint_max_tokens: 24 } };

  it('resolves model folders, fuser, eval set and generation lengths relative to pair.json', () => {
    const p = pairFromManifest(manifest, '/models/c2c-tiny/pair.json');
    expect(p.receiver).toEqual({ id: 'c2c-tiny/receiver', localPath: '/models/', dtype: 'fp32' });
    expect(p.sharer.id).toBe('c2c-tiny/sharer');
    expect(p.fuser).toBe('/models/c2c-tiny/fuser/');
    expect(p.evalUrl).toBe('/models/c2c-tiny/eval_test.jsonl');
    expect(p.reportUrl).toBe('/models/report.json');
    expect([p.maxNewTokens, p.relayMaxTokens]).toEqual([8, 24]);
    expect(unavailableReason(p, false)).toBeNull();
  });

  it('rejects a manifest without a receiver or with folders outside /models/', () => {
    expect(() => pairFromManifest({ ...manifest, receiver: undefined }, '/models/c2c-tiny/pair.json')).toThrow(/receiver/);
    expect(() => pairFromManifest({ ...manifest, sharer: '../../etc' }, '/models/c2c-tiny/pair.json')).toThrow(/outside/);
  });

  it('Hub pairs are unavailable offline and without a fuser', () => {
    expect(HUB_PAIRS.length).toBeGreaterThan(0);
    const hub = HUB_PAIRS[0];
    expect(hub.receiver.id).toMatch(/^onnx-community\//);
    expect(unavailableReason(hub, false)).toMatch(/offline/);
    expect(unavailableReason(hub, true)).toMatch(/fuser/);
    expect(unavailableReason({ ...hub, fuser: 'https://example.org/fuser/' }, true)).toBeNull();
  });
});

describe('eval set and answer rule', () => {
  it('parses JSONL and names the bad line', () => {
    const items = parseEvalJsonl('{"prompt":"Q1","answer":"B"}\n\n{"prompt":"Q2","answer":"Oslo","type":"short"}\n', 'eval.jsonl');
    expect(items.map((i) => i.answer)).toEqual(['B', 'Oslo']);
    expect(() => parseEvalJsonl('{"prompt":"Q1","answer":"B"}\n{oops', 'eval.jsonl')).toThrow(/line 2/);
    expect(() => parseEvalJsonl('{"prompt":"Q1"}', 'eval.jsonl')).toThrow(/answer/);
  });

  it('scores like the PyTorch report: stripped exact match, case-sensitive', () => {
    expect(scoreAnswer(' Oslo\n', { answer: 'Oslo' })).toBe(true);
    expect(scoreAnswer('oslo', { answer: 'Oslo' })).toBe(false);
    expect(scoreAnswer('Oslo.', { answer: 'Oslo' })).toBe(false);
    expect(scoreAnswer('B', { answer: 'B' })).toBe(true);
  });
});
