/**
 * Benchmark core (no DOM): runs eval items in every mode on one engine, scores answers and summarises
 * accuracy and latency per mode. Used by the demo's benchmark panel and, through `window.c2cDemo`,
 * by `npm run bench` — one implementation, so the page and the report can never disagree.
 */
import type { C2CEngine, DeviceReport, GenerationMode, GenerationResult, TimingBreakdown } from '../types';
import { scoreAnswer, type EvalItem } from './eval-set';

export interface BenchItemResult {
  item: number;
  mode: GenerationMode;
  text: string;
  tokenIds: number[];
  hint?: string;
  /** Tokens the sharer wrote for the text relay's hint (text-relay only). */
  hintTokens?: number;
  expected: string;
  correct: boolean;
  timing: Omit<TimingBreakdown, 'device'>;
}

export interface ModeSummary {
  mode: GenerationMode;
  n: number;
  correct: number;
  accuracy: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  meanTtftMs: number;
  meanDecodeTokPerS: number;
  /** Text relay: mean and largest number of tokens the sharer wrote before the receiver started. */
  meanHintTokens?: number;
  maxHintTokens?: number;
  /** Mean of each stage, for the stacked timing chart. */
  stages: { sharerPrefillMs: number; receiverPrefillMs: number; fuseMs: number; relayMs: number; decodeMs: number };
}

export interface BenchRun {
  pair: string;
  engineKind: 'real' | 'fake';
  device: DeviceReport;
  modes: GenerationMode[];
  items: number;
  maxNewTokens: number;
  relayMaxTokens?: number;
  warmup: boolean;
  startedAt: string;
  wallMs: number;
  summaries: ModeSummary[];
  /** Mean text-relay latency / mean C2C latency (>1: C2C is faster). */
  c2cSpeedupOverRelay: number | null;
  /** Mean C2C latency / mean receiver-only latency (1.0: no overhead). */
  c2cOverReceiver: number | null;
  results: BenchItemResult[];
}

export interface BenchOptions {
  modes: GenerationMode[];
  maxNewTokens?: number;
  /** Text relay hint cap (the pair's `hint_max_tokens`, so relay matches the PyTorch evaluation). */
  relayMaxTokens?: number;
  signal?: AbortSignal;
  /** One untimed generation per mode before measuring (first calls pay for lazy init and JIT). Default true. */
  warmup?: boolean;
  onResult?: (r: BenchItemResult, done: number, total: number) => void;
}

/** Nearest-rank percentile (p in [0, 100]) of a non-empty list. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[rank - 1];
}

export function mean(values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export function summarise(mode: GenerationMode, rs: BenchItemResult[]): ModeSummary {
  const mine = rs.filter((r) => r.mode === mode);
  const total = mine.map((r) => r.timing.totalMs);
  const m = (f: (t: BenchItemResult['timing']) => number) => mean(mine.map((r) => f(r.timing)));
  const correct = mine.filter((r) => r.correct).length;
  const hints = mine.flatMap((r) => (r.hintTokens === undefined ? [] : [r.hintTokens]));
  return {
    mode,
    n: mine.length,
    correct,
    accuracy: mine.length ? correct / mine.length : NaN,
    meanMs: mean(total),
    p50Ms: percentile(total, 50),
    p90Ms: percentile(total, 90),
    meanTtftMs: m((t) => t.ttftMs),
    meanDecodeTokPerS: m((t) => t.decodeTokensPerS),
    ...(hints.length ? { meanHintTokens: mean(hints), maxHintTokens: Math.max(...hints) } : {}),
    stages: {
      sharerPrefillMs: m((t) => t.sharerPrefillMs),
      receiverPrefillMs: m((t) => t.receiverPrefillMs),
      fuseMs: m((t) => t.fuseMs),
      relayMs: m((t) => t.relayMs),
      decodeMs: m((t) => t.decodeMs),
    },
  };
}

function stripDevice(t: TimingBreakdown): Omit<TimingBreakdown, 'device'> {
  const { device: _device, ...rest } = t;
  return rest;
}

export function toItemResult(item: number, it: EvalItem, r: GenerationResult): BenchItemResult {
  return {
    item,
    mode: r.mode,
    text: r.text,
    tokenIds: r.tokenIds,
    hint: r.hint?.text,
    ...(r.hint ? { hintTokens: r.hint.tokenIds.length } : {}),
    expected: it.answer,
    correct: scoreAnswer(r.text, it),
    timing: stripDevice(r.timing),
  };
}

/** Derives the summary block from per-item results (also used to re-summarise a saved run). */
export function buildRun(base: Omit<BenchRun, 'summaries' | 'c2cSpeedupOverRelay' | 'c2cOverReceiver'>): BenchRun {
  const summaries = base.modes.map((m) => summarise(m, base.results));
  const get = (m: GenerationMode) => summaries.find((s) => s.mode === m && s.n > 0);
  const c2c = get('c2c'), relay = get('text-relay'), recv = get('receiver');
  return {
    ...base,
    summaries,
    c2cSpeedupOverRelay: c2c && relay ? relay.meanMs / c2c.meanMs : null,
    c2cOverReceiver: c2c && recv ? c2c.meanMs / recv.meanMs : null,
  };
}

/**
 * Runs `items` × `modes` greedily. Modes are interleaved per item so that a slow phase of a shared CPU
 * hits every mode alike rather than one mode's whole block.
 */
export async function runBenchmark(
  engine: C2CEngine,
  items: EvalItem[],
  meta: { pair: string; engineKind: 'real' | 'fake' },
  opts: BenchOptions,
): Promise<BenchRun> {
  const maxNewTokens = opts.maxNewTokens ?? 16;
  const results: BenchItemResult[] = [];
  const total = items.length * opts.modes.length;
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const warmup = opts.warmup ?? true;
  const gen = (i: number, mode: GenerationMode) => engine.generate([{ role: 'user', content: items[i].prompt }],
    { mode, maxNewTokens, relayMaxTokens: opts.relayMaxTokens, signal: opts.signal });
  if (warmup && items.length) for (const mode of opts.modes) await gen(0, mode);
  for (let i = 0; i < items.length; i++) {
    for (const mode of opts.modes) {
      opts.signal?.throwIfAborted();
      const r = await gen(i, mode);
      const row = toItemResult(i, items[i], r);
      results.push(row);
      opts.onResult?.(row, results.length, total);
    }
  }
  return buildRun({
    ...meta,
    device: engine.device,
    modes: [...opts.modes],
    items: items.length,
    maxNewTokens,
    relayMaxTokens: opts.relayMaxTokens,
    warmup,
    startedAt,
    wallMs: performance.now() - t0,
    results,
  });
}
