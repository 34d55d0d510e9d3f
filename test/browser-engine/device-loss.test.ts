/**
 * A lost GPU device in headless Chromium (WebGPU on SwiftShader, workers topology): destroying the receiver
 * worker's GPUDevice mid-generation fails that request with DeviceLostError (typed across the worker boundary,
 * no hang); the next request reloads the pair into fresh workers on a new device and gives the golden tokens;
 * a device lost between requests fails the next one the same way; `engine.reload()` restores it explicitly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB } from '../engine/pair';
import { buildAndServe, closeBrowser, launchBrowser, servePair } from './server';
import type { EngineOptions } from '../../src/types';

describe.skipIf(!PAIR)(`device loss in the browser${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  const pair = PAIR_OR_STUB;
  const g = pair.golden;
  let server: { url: string; close: () => Promise<void> };
  let browser: Browser;
  let page: Page;
  let base = '';

  beforeAll(async () => {
    server = await buildAndServe();
    base = servePair(pair);
    browser = await launchBrowser();
    page = await browser.newPage();
    page.on('console', (m) => process.env.C2C_DEBUG && console.log(`[page] ${m.text()}`));
    await page.goto(`${server.url}test/browser-engine/page.html`);
    await page.waitForFunction(() => window.c2c?.ready === true);
  });
  afterAll(async () => {
    if (browser) await closeBrowser(browser);
    await server?.close();
  });

  it('lost mid-generation → DeviceLostError; the next request reloads on a new device; reload() works', { timeout: 300_000 }, async () => {
    const c = g.cases[0];
    const opts = { sharer: { id: 'sharer', localPath: base }, receiver: { id: 'receiver', localPath: base }, fuser: `${base}fuser/`,
      device: 'webgpu', topology: 'workers' } as EngineOptions;
    const r = await page.evaluate(
      async ({ opts, user, golden }) => {
        type Hooks = { __loseDeviceForTests(role: string): Promise<void> };
        const err = async (p: Promise<unknown>) => p.then((v) => ({ ok: v }),
          (e: Error & { code?: string }) => ({ name: e.name, code: e.code, message: e.message }));
        const msgs = [{ role: 'user' as const, content: user }];
        // Sampling at a high temperature keeps the decode going past the first token (the greedy answer is short).
        const seed = 0;
        const engine = await window.c2c.createC2CEngine(opts);
        const hooks = engine as unknown as Hooks;
        try {
          const log = (m: string) => console.log(`${Math.round(performance.now())} ${m}`);
          log('loaded');
          const before = engine.device;
          let lostAt = -1;
          const t0 = performance.now();
          const midGeneration = await err(
            engine.generate(msgs, {
              mode: 'receiver', maxNewTokens: 6, sampling: { temperature: 2, seed },
              onToken: (e) => {
                if (lostAt < 0) {
                  lostAt = e.index;
                  void hooks.__loseDeviceForTests('receiver');
                }
              },
            }),
          );
          const failedAfterMs = performance.now() - t0;
          log(`mid-generation: ${JSON.stringify(midGeneration).slice(0, 200)}`);
          const recovered = await engine.generate(msgs, { mode: 'c2c', maxNewTokens: golden.length });
          log('recovered');
          await hooks.__loseDeviceForTests('receiver');
          const betweenRequests = await err(engine.generate(msgs, { mode: 'c2c', maxNewTokens: golden.length }));
          log(`between: ${JSON.stringify(betweenRequests).slice(0, 200)}`);
          const tReload = performance.now();
          await engine.reload();
          const reloadMs = performance.now() - tReload;
          log('reloaded');
          const afterReload = await engine.generate(msgs, { mode: 'c2c', maxNewTokens: golden.length });
          return { before, midGeneration, failedAfterMs, lostAt, recovered: recovered.tokenIds, betweenRequests, reloadMs,
            afterReload: afterReload.tokenIds, backend: engine.device.backend };
        } finally {
          await engine.dispose();
        }
      },
      { opts, user: c.user, golden: c.c2c.output_ids },
    );
    expect(r.before.backend).toBe('webgpu');
    expect(r.lostAt).toBe(0);
    expect(r.midGeneration).toMatchObject({ name: 'DeviceLostError', code: 'DEVICE_LOST' });
    expect(r.failedAfterMs).toBeLessThan(60_000); // no hang on the dead device
    expect(r.recovered).toEqual(c.c2c.output_ids);
    // Lost between requests: the next request finds the device gone (reported the same way, then recovers).
    expect(['DeviceLostError']).toContain((r.betweenRequests as { name?: string }).name ?? 'ok');
    expect(r.afterReload).toEqual(c.c2c.output_ids);
    expect(r.reloadMs).toBeGreaterThan(100); // reload() spawned workers and loaded the pair again (not a no-op)
    expect(r.backend).toBe('webgpu');
  });
});
