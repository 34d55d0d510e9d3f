/**
 * Runtime benchmark (opt-in: C2C_BENCH=1): both browser topologies on wasm (and, with C2C_BENCH_WEBGPU=1,
 * on WebGPU) plus the Node engine, on the shipped pair. Reports load time and the median timing breakdown of
 * each mode over a few runs; writes test-results/runtime-bench.json. Numbers, not assertions beyond sanity.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { PAIR, PAIR_OR_STUB, REPO } from '../engine/pair';
import { openTestPage, type TestPage } from './server';
import { createNodeC2CEngine } from '../../src/node';
import type { EngineOptions, GenerationMode, TimingBreakdown } from '../../src/types';

const RUNS = Number(process.env.C2C_BENCH_RUNS ?? 5);
const MODES: GenerationMode[] = ['receiver', 'sharer', 'text-relay', 'c2c'];
type Row = { setup: string; loadMs: number; mode: string; tokens: number; timing: Partial<TimingBreakdown> };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function summarize(setup: string, loadMs: number, mode: string, runs: { tokens: number; timing: TimingBreakdown }[]): Row {
  const keys = ['sharerPrefillMs', 'receiverPrefillMs', 'fuseMs', 'relayMs', 'ttftMs', 'decodeMs', 'decodeTokensPerS', 'totalMs'] as const;
  const timing: Partial<TimingBreakdown> = {};
  for (const k of keys) timing[k] = Math.round(median(runs.map((r) => r.timing[k])) * 10) / 10;
  return { setup, loadMs: Math.round(loadMs), mode, tokens: runs[0].tokens, timing };
}

describe.skipIf(!PAIR || !process.env.C2C_BENCH)('runtime benchmark (C2C_BENCH=1)', () => {
  const pair = PAIR_OR_STUB;
  const user = pair.golden.cases[0].user;
  const maxNew = pair.golden.max_new_tokens;
  const rows: Row[] = [];
  let tp: TestPage | undefined;
  let page: Page;
  let base = '';

  beforeAll(async () => {
    tp = await openTestPage(pair);
    ({ page, base } = tp);
  });
  afterAll(async () => {
    await tp?.close();
    mkdirSync(path.join(REPO, 'test-results'), { recursive: true });
    writeFileSync(path.join(REPO, 'test-results/runtime-bench.json'), JSON.stringify(rows, null, 1));
    console.log(rows.map((r) => `${r.setup}\t${r.mode}\tload ${r.loadMs}\ttok ${r.tokens}\t${JSON.stringify(r.timing)}`).join('\n'));
  });

  const browserSetups: [string, Partial<EngineOptions>, number][] = [
    ['browser wasm workers', { device: 'wasm', topology: 'workers' }, RUNS],
    ['browser wasm single', { device: 'wasm', topology: 'single' }, RUNS],
  ];
  if (process.env.C2C_BENCH_WEBGPU) {
    browserSetups.push(['browser webgpu(SwiftShader) workers', { device: 'webgpu', topology: 'workers' }, 1]);
    browserSetups.push(['browser webgpu(SwiftShader) single', { device: 'webgpu', topology: 'single' }, 1]);
  }

  for (const [setup, extra, runs] of browserSetups) {
    it(setup, async () => {
      const opts = { sharer: { id: 'sharer', localPath: base }, receiver: { id: 'receiver', localPath: base },
        fuser: `${base}fuser/`, ...extra };
      const res = await page.evaluate(
        async ({ opts, user, maxNew, runs, modes }) => {
          const t0 = performance.now();
          const engine = await window.c2c.createC2CEngine(opts as never);
          const loadMs = performance.now() - t0;
          const out: Record<string, { tokens: number; timing: unknown }[]> = {};
          try {
            await engine.generate([{ role: 'user', content: user }], { mode: 'c2c', maxNewTokens: 2 }); // first-call effects
            for (const mode of modes) {
              out[mode] = [];
              for (let i = 0; i < runs; i++) {
                const r = await engine.generate([{ role: 'user', content: user }], { mode: mode as never, maxNewTokens: maxNew });
                out[mode].push({ tokens: r.tokenIds.length, timing: r.timing });
              }
            }
            return { loadMs, out, device: engine.device };
          } finally {
            await engine.dispose();
          }
        },
        { opts, user, maxNew, runs, modes: MODES },
      );
      for (const m of MODES) rows.push(summarize(`${setup} [${res.device.backend}/${res.device.fuserBackend}]`, res.loadMs, m,
        res.out[m] as never));
      expect(res.out.c2c[0].tokens).toBeGreaterThan(0);
    });
  }

  it('node cpu in-process', async () => {
    const t0 = performance.now();
    const engine = await createNodeC2CEngine({ sharer: { id: 'sharer', localPath: pair.dir },
      receiver: { id: 'receiver', localPath: pair.dir }, fuser: path.join(pair.dir, 'fuser') });
    const loadMs = performance.now() - t0;
    try {
      await engine.generate([{ role: 'user', content: user }], { mode: 'c2c', maxNewTokens: 2 });
      for (const mode of MODES) {
        const runs = [];
        for (let i = 0; i < RUNS; i++) {
          const r = await engine.generate([{ role: 'user', content: user }], { mode, maxNewTokens: maxNew });
          runs.push({ tokens: r.tokenIds.length, timing: r.timing });
        }
        rows.push(summarize('node cpu', loadMs, mode, runs));
      }
    } finally {
      await engine.dispose();
    }
  });
});
