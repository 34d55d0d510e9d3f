/**
 * End-to-end on the REAL engine and the embedded pair: the built demo in headless system Chromium loads
 * models/c2c-tiny on the wasm device (fast; SwiftShader WebGPU takes ~0.6 s per decode step), runs one
 * golden question in every mode through the page, and checks the answers against the PyTorch golden
 * outputs (models/c2c-tiny/golden/golden.json), the streamed text, the timing bars and the console.
 * Skips when Chromium, the golden fixtures or the browser engine are missing. C2C_MODELS_DIR: another models folder.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { REPO, buildDemo, chromePath, closeBrowser, launchBrowser, serveDemo, watchConsole } from './harness.mjs';

interface GoldenMode { output_ids: number[]; text: string; hint_ids?: number[]; hint_text?: string }
interface GoldenCase {
  case: number; type: string; user: string; answer: string; prompt_ids: number[];
  receiver: GoldenMode; sharer: GoldenMode; text_relay: GoldenMode; c2c: GoldenMode;
}
interface Golden { max_new_tokens: number; hint_max_tokens: number; eos_token_ids: number[]; cases: GoldenCase[] }
interface PageResult { text: string; tokenIds: number[]; promptIds: number[]; hint?: {
  text: string; tokenIds: number[] }; timing: Record<string, unknown> }

/** C2C_MODELS_DIR (also read by the Vite models plugin) points the test at another models folder. */
const MODELS = path.resolve(REPO, process.env.C2C_MODELS_DIR ?? 'models');
const GOLDEN = path.join(MODELS, 'c2c-tiny/golden/golden.json');
const OUT = 'test-results/e2e-real-dist';
const indexSrc = readFileSync(path.join(REPO, 'src/index.ts'), 'utf8');
const hasEngine = /createC2CEngine/.test(indexSrc);
const ready = existsSync(chromePath()) && existsSync(GOLDEN) && hasEngine;

describe.skipIf(!ready)('demo e2e on the embedded pair (wasm, golden outputs)', () => {
  const golden: Golden = ready ? JSON.parse(readFileSync(GOLDEN, 'utf8')) : ({} as Golden);
  const eos = new Set(golden.eos_token_ids ?? []);
  /** Golden ids end with the EOS token when generation stopped; the engine may or may not report it. */
  const strip = (ids: number[]) => { const out = [...ids]; while (out.length && eos.has(out[out.length - 1])) out.pop(); return out; };
  let server: { url: string; close: () => Promise<void> };
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let results: Record<string, PageResult>;
  const gcase = ready ? golden.cases[0] : ({} as GoldenCase);

  beforeAll(async () => {
    await buildDemo(OUT);
    server = await serveDemo(OUT);
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    errors = watchConsole(page);
    await page.goto(`${server.url}?device=wasm`);
    await page.evaluate(() => (window as unknown as { c2cDemo: { ready: Promise<void> } }).c2cDemo.ready);
  });

  afterAll(async () => {
    if (browser) await closeBrowser(browser);
    await server?.close();
  });

  it('loads the embedded pair on wasm with all three progress phases complete', async () => {
    await page.click('#load');
    await page.waitForSelector('body[data-state=ready]', { timeout: 120_000 });
    const progress = await page.$$eval('.progress-row progress', (els) => els.map((e) => (e as HTMLProgressElement).value));
    expect(progress).toEqual([1, 1, 1]);
    expect(await page.textContent('[data-testid=device-report]')).toContain('wasm');
    expect(Number(await page.inputValue('#max-new'))).toBe(golden.max_new_tokens);
  });

  it('answers one golden question in every mode exactly as PyTorch did', async () => {
    await page.check('#with-sharer');
    await page.fill('#prompt', gcase.user);
    results = await page.evaluate((user) =>
      (window as unknown as { c2cDemo: { ask: (t: string) => Promise<Record<string, PageResult>> } }).c2cDemo.ask(user), gcase.user);
    const expected: Record<string, GoldenMode> = { receiver: gcase.receiver, sharer: gcase.sharer, 'text-relay': gcase.text_relay,
      c2c: gcase.c2c };
    for (const [mode, g] of Object.entries(expected)) {
      const r = results[mode];
      expect(r, mode).toBeDefined();
      expect(strip(r.tokenIds), `${mode} token ids`).toEqual(strip(g.output_ids));
      expect(r.text.trim(), `${mode} text`).toBe(g.text);
    }
    expect(strip(results['text-relay'].hint!.tokenIds)).toEqual(strip(gcase.text_relay.hint_ids!));
    expect(results['text-relay'].hint!.text.trim()).toBe(gcase.text_relay.hint_text);
    expect(results.c2c.promptIds).toEqual(gcase.prompt_ids);
  });

  it('shows the streamed answers, the hint and a timing bar in each column', async () => {
    for (const mode of ['receiver', 'sharer', 'text-relay', 'c2c']) {
      expect((await page.textContent(`[data-testid=answer-${mode}]`))?.trim()).toBe(results[mode].text.trim());
      const widths = await page.$$eval(`[data-testid=timing-${mode}] .tbar-seg`, (els) => els.map((e) => e.getBoundingClientRect().width));
      expect(widths.length, `${mode} timing segments`).toBeGreaterThan(0);
      expect(widths.reduce((a, b) => a + b, 0)).toBeGreaterThan(2);
    }
    expect((await page.textContent('[data-mode=text-relay] .hint-text'))?.trim()).toBe(gcase.text_relay.hint_text);
    // The golden question is a test-split item: each column is marked right or wrong against its gold answer.
    for (const mode of ['receiver', 'sharer', 'text-relay', 'c2c']) {
      const right = results[mode].text.trim() === gcase.answer;
      expect(await page.getAttribute(`[data-testid=verdict-${mode}]`, 'data-verdict'), mode).toBe(right ? 'right' : 'wrong');
    }
    // The C2C bar has a fuse stage; the relay bar has a relay stage.
    expect(await page.$$eval('[data-testid=timing-c2c] .tbar-seg',
      (els) => els.some((e) => (e as HTMLElement).title.startsWith('fuse')))).toBe(true);
    expect(await page.$$eval('[data-testid=timing-text-relay] .tbar-seg',
      (els) => els.some((e) => (e as HTMLElement).title.startsWith('relay')))).toBe(true);
    await page.screenshot({ path: 'test-results/demo-real-wasm.png', fullPage: true });
  });

  it('logged no console errors', () => {
    expect(errors).toEqual([]);
  });
});
