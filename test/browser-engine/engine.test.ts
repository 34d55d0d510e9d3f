/**
 * The browser engine in headless system Chromium (page built by Vite, served on 127.0.0.1): workers on wasm
 * give the PyTorch golden tokens for every mode, in both topologies; typed errors cross the worker boundary;
 * a crashed worker fails its request with WorkerCrashedError and the next request works; abort stops a decode;
 * WebGPU (SwiftShader) runs one short C2C generation on the WebGPU fuser and reports its adapter. Memory and the
 * forced WebGPU-fuser fallback: memory.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB } from '../engine/pair';
import { openTestPage, servePair, type TestPage } from './server';
import { ensureFp16Pair } from '../helpers/fp16-pair';
import type { EngineOptions } from '../../src/types';

const describeBrowser = describe.skipIf(!PAIR);

describeBrowser(`browser engine${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  const pair = PAIR_OR_STUB;
  const g = pair.golden;
  let tp: TestPage | undefined;
  let page: Page;
  let base = '';
  const pageErrors: string[] = [];

  beforeAll(async () => {
    tp = await openTestPage(pair, { onPage: (p) => p.on('pageerror', (e) => pageErrors.push(e.message)) });
    ({ page, base } = tp);
  });
  afterAll(async () => tp?.close());

  const engineOpts = (extra: Partial<EngineOptions> = {}): EngineOptions =>
    ({ sharer: { id: 'sharer', localPath: base }, receiver: { id: 'receiver', localPath: base }, fuser: `${base}fuser/`,
      ...extra }) as EngineOptions;

  /** Creates an engine in the page (kept on window.__engine), runs the modes on every case, disposes it. */
  async function runAllModes(opts: EngineOptions, modes: string[], caseIds: number[]) {
    return page.evaluate(
      async ({ opts, modes, cases, maxNew, relayMax }) => {
        const progress: { phase: string; progress: number; total: number }[] = [];
        const engine = await window.c2c.createC2CEngine({ ...opts,
          onProgress: (e) => progress.push({ phase: e.phase, progress: e.progress, total: e.total }) });
        const out: Record<string, { tokenIds: number[]; promptIds: number[]; hintIds?: number[]; timing: unknown }> = {};
        try {
          for (const c of cases) {
            for (const mode of modes) {
              const r = await engine.generate([{ role: 'user', content: c.user }],
                { mode: mode as never, maxNewTokens: maxNew, relayMaxTokens: relayMax });
              out[`${c.case}/${mode}`] = { tokenIds: r.tokenIds, promptIds: r.promptIds, hintIds: r.hint?.tokenIds, timing: r.timing };
            }
          }
          return { device: engine.device, out, progress };
        } finally {
          await engine.dispose();
        }
      },
      { opts, modes, cases: g.cases.filter((c) => caseIds.includes(c.case)).map((c) => ({ case: c.case, user: c.user })),
        maxNew: g.max_new_tokens, relayMax: g.hint_max_tokens },
    );
  }

  const goldenOf = (caseId: number, mode: string) => {
    const c = g.cases.find((x) => x.case === caseId)!;
    return mode === 'text-relay' ? c.text_relay.output_ids : c[mode as 'receiver' | 'sharer' | 'c2c'].output_ids;
  };

  it('workers topology on wasm: every mode gives the golden tokens', async () => {
    const ids = g.cases.map((c) => c.case);
    const r = await runAllModes(engineOpts({ device: 'wasm', topology: 'workers' }), ['receiver', 'sharer', 'text-relay', 'c2c'], ids);
    const { device, out } = r;
    expect(device).toMatchObject({ backend: 'wasm', fuserBackend: 'cpu', topology: 'workers' });
    for (const id of ids) {
      for (const mode of ['receiver', 'sharer', 'text-relay', 'c2c']) expect(out[`${id}/${mode}`].tokenIds,
        `case ${id} ${mode}`).toEqual(goldenOf(id, mode));
      expect(out[`${id}/text-relay`].hintIds).toEqual(g.cases.find((c) => c.case === id)!.text_relay.hint_ids);
    }
    // Progress from both workers, aggregated: phases in order, monotone within a phase, bytes seen, ends at 100%.
    const order = ['download', 'compile', 'warmup'];
    const p = r.progress;
    for (let i = 1; i < p.length; i++) {
      expect(order.indexOf(p[i].phase)).toBeGreaterThanOrEqual(order.indexOf(p[i - 1].phase));
      if (p[i].phase === p[i - 1].phase) expect(p[i].progress).toBeGreaterThanOrEqual(p[i - 1].progress);
    }
    expect(p.some((e) => e.phase === 'download' && e.total > 1_000_000)).toBe(true);
    expect(p.at(-1)).toMatchObject({ phase: 'warmup', progress: 1 });
    console.log('[browser wasm workers] c2c timing', JSON.stringify(out[`${ids[0]}/c2c`].timing));
  });

  it('fp16 pair (float16 KV) in workers on wasm: dtypes reported, receiver/sharer/c2c give the golden tokens', async () => {
    const base16 = servePair(ensureFp16Pair(pair), undefined, 'pair-fp16');
    const ids = g.cases.map((c) => c.case);
    const opts = { sharer: { id: 'sharer', localPath: base16 }, receiver: { id: 'receiver', localPath: base16 },
      fuser: `${base16}fuser/`, device: 'wasm', topology: 'workers' } as EngineOptions;
    const { device, out } = await runAllModes(opts, ['receiver', 'sharer', 'c2c', 'text-relay'], ids);
    // No dtype given: each model's config.json default (fp16) is picked, as transformers.js users get it.
    expect(device.models).toEqual({ receiver: { modelDType: 'fp16', kvDType: 'float16' },
      sharer: { modelDType: 'fp16', kvDType: 'float16' } });
    expect(device).toMatchObject({ backend: 'wasm', fuserBackend: 'cpu', topology: 'workers' });
    let relay = 0;
    for (const id of ids) {
      for (const mode of ['receiver', 'sharer', 'c2c']) expect(out[`${id}/${mode}`].tokenIds, `case ${id} ${mode}`).toEqual(
        goldenOf(id, mode));
      expect(out[`${id}/text-relay`].tokenIds.length, `case ${id} text-relay ran`).toBeGreaterThan(0);
      relay += +(JSON.stringify(out[`${id}/text-relay`].tokenIds) === JSON.stringify(goldenOf(id, 'text-relay')));
    }
    // f16 KV flips near-ties in the longer relay prompts (test/engine/fp16.test.ts explains each one in Node).
    console.log(`[browser wasm workers fp16] text relay golden matches: ${relay}/${ids.length}; c2c timing ${JSON.stringify(out[`${ids[0]}/c2c`].timing)}`);
  });

  it('single topology on wasm: c2c and text relay give the golden tokens', async () => {
    const id = g.cases[0].case;
    const { device, out } = await runAllModes(engineOpts({ device: 'wasm', topology: 'single' }), ['c2c', 'text-relay'], [id]);
    expect(device.topology).toBe('single');
    expect(out[`${id}/c2c`].tokenIds).toEqual(goldenOf(id, 'c2c'));
    expect(out[`${id}/text-relay`].tokenIds).toEqual(goldenOf(id, 'text-relay'));
    console.log('[browser wasm single] c2c timing', JSON.stringify(out[`${id}/c2c`].timing));
  });

  it('typed errors cross the worker boundary; crash and abort leave the engine usable', async () => {
    const c = g.cases[0];
    const r = await page.evaluate(
      async ({ opts, user, maxNew, relayMax }) => {
        const err = async (p: Promise<unknown>) => p.then(() => null,
          (e: Error & { code?: string }) => ({ name: e.name, code: e.code, message: e.message }));
        const badFuser = await err(window.c2c.createC2CEngine({ ...opts, fuser: '/no-such-fuser/' }));
        const badModel = await err(window.c2c.createC2CEngine(
          { ...opts, receiver: { id: 'no-such-model', localPath: opts.receiver.localPath } }));
        const loadCtl = new AbortController();
        setTimeout(() => loadCtl.abort(), 30);
        const loadAbort = await err(window.c2c.createC2CEngine({ ...opts, signal: loadCtl.signal }));
        const engine = await window.c2c.createC2CEngine(opts);
        const msgs = [{ role: 'user' as const, content: user }];
        try {
          const empty = await err(engine.generate([], {}));
          // Crash the receiver's worker while it decodes: that request fails with WorkerCrashedError...
          let crashedAt = -1;
          const crash = await err(
            engine.generate(msgs, {
              mode: 'c2c', maxNewTokens: maxNew,
              onToken: (e) => {
                if (crashedAt < 0) {
                  crashedAt = e.index;
                  (engine as unknown as { __crashWorkerForTests(r: string): void }).__crashWorkerForTests('receiver');
                }
              },
            }),
          );
          // ...and the next one respawns the workers and succeeds.
          const after = await engine.generate(msgs, { mode: 'c2c', maxNewTokens: maxNew });
          const ctl = new AbortController();
          const aborted = await engine.generate(msgs, { mode: 'receiver', maxNewTokens: maxNew, signal: ctl.signal,
            onToken: (e) => e.index === 0 && ctl.abort() });
          // Aborting while the sharer writes its (longer) hint cancels the whole text-relay request.
          const ctl2 = new AbortController();
          const relayAbort = await err(engine.generate(msgs,
            { mode: 'text-relay', maxNewTokens: maxNew, relayMaxTokens: relayMax, signal: ctl2.signal, onToken: (e) => e.index === 0
            && ctl2.abort() }));
          const again = await engine.generate(msgs, { mode: 'receiver', maxNewTokens: maxNew });
          return { loadAbort, badFuser, badModel, empty, crash, after: after.tokenIds,
            aborted: { reason: aborted.finishReason, n: aborted.tokenIds.length }, relayAbort, again: again.tokenIds };
        } finally {
          await engine.dispose();
        }
      },
      { opts: engineOpts({ device: 'wasm' }), user: c.user, maxNew: g.max_new_tokens, relayMax: g.hint_max_tokens },
    );
    if (c.text_relay.hint_ids.length > 4) expect(r.relayAbort).toMatchObject({ name: 'AbortError', code: 'ABORTED' });
    expect(r.loadAbort).toMatchObject({ name: 'AbortError' });
    expect(r.badFuser).toMatchObject({ name: 'FuserFormatError', code: 'FUSER_FORMAT' });
    expect(r.badModel).toMatchObject({ name: 'ModelLoadError', code: 'MODEL_LOAD' });
    expect(r.badModel?.message).toContain('no-such-model');
    expect(r.empty).toMatchObject({ name: 'InvalidInputError' });
    expect(r.crash).toMatchObject({ name: 'WorkerCrashedError', code: 'WORKER_CRASHED' });
    expect(r.after).toEqual(c.c2c.output_ids);
    // The abort reaches the worker within a step or two; a golden answer shorter than that may end on eos first.
    if (c.receiver.output_ids.length > 4) {
      expect(r.aborted.reason).toBe('aborted');
      expect(r.aborted.n).toBeLessThanOrEqual(3);
    } else expect(['aborted', 'eos']).toContain(r.aborted.reason);
    expect(r.again).toEqual(c.receiver.output_ids);
  });

  it('WebGPU (SwiftShader): one short c2c generation on the WebGPU fuser matches the golden prefix and reports the adapter', async () => {
    const c = g.cases[0];
    const n = 2; // ~0.6 s per decode step on SwiftShader
    const r = await page.evaluate(
      async ({ opts, user, n }) => {
        const engine = await window.c2c.createC2CEngine(opts);
        try {
          const res = await engine.generate([{ role: 'user', content: user }], { mode: 'c2c', maxNewTokens: n });
          return { device: engine.device, ids: res.tokenIds, timing: res.timing };
        } finally {
          await engine.dispose();
        }
      },
      { opts: engineOpts({ device: 'webgpu', topology: 'single' }), user: c.user, n },
    );
    expect(r.device.backend).toBe('webgpu');
    // The WGSL fuser really ran (SwiftShader has no shader-f16: f32 kernels), not a CPU fallback.
    expect(r.device.fuserBackend).toBe('webgpu');
    expect(r.device.fuserFallbackReason).toBeUndefined();
    expect(r.device.shaderF16).toBe(false);
    expect(r.device.adapter?.isFallbackAdapter).toBe(true);
    expect(r.ids).toEqual(c.c2c.output_ids.slice(0, n));
    console.log('[browser webgpu single] device', JSON.stringify(r.device), 'timing', JSON.stringify(r.timing));
  });

  const heteroPath = path.join(pair.dir, 'golden/hetero.json');
  const hetero = existsSync(heteroPath) && existsSync(path.join(pair.dir, 'fuser_b/fuser.json'))
    ? (JSON.parse(readFileSync(heteroPath, 'utf8')) as { cases: {
      user: string; aligned: { receiver_ids: number[] }; c2c_output_ids: number[] }[] })
    : null;
  it.skipIf(!hetero)('cross-tokenizer pair in workers: the aligner queries both workers and c2c gives the golden tokens', async () => {
    const res = await page.evaluate(
      async ({ opts, users, maxNew }) => {
        const engine = await window.c2c.createC2CEngine(opts);
        try {
          const out = [];
          for (const u of users) {
            const r = await engine.generate([{ role: 'user', content: u }], { mode: 'c2c', maxNewTokens: maxNew });
            out.push({ promptIds: r.promptIds, tokenIds: r.tokenIds });
          }
          return out;
        } finally {
          await engine.dispose();
        }
      },
      { opts: engineOpts({ device: 'wasm', sharer: { id: 'sharer_b', localPath: base }, fuser: `${base}fuser_b/` }),
        users: hetero!.cases.map((c) => c.user), maxNew: g.max_new_tokens },
    );
    hetero!.cases.forEach((c, i) => {
      expect(res[i].promptIds).toEqual(c.aligned.receiver_ids);
      expect(res[i].tokenIds).toEqual(c.c2c_output_ids);
    });
  });

  it('produced no uncaught page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
