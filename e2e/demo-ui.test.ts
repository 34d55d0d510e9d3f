/**
 * UI e2e of the demo itself, on the FAKE engine (`?engine=fake`): keyboard flow (Load, Enter runs),
 * streaming columns with timing bars, the benchmark panel's table and charts, phone-width layout, and no
 * console errors. Model numbers are tested in demo-real.test.ts; nothing here measures anything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { buildDemo, chromePath, closeBrowser, launchBrowser, serveDemo, watchConsole } from './harness.mjs';

const OUT = 'test-results/e2e-ui-dist';
const hasChrome = existsSync(chromePath());

describe.skipIf(!hasChrome)('demo UI (fake engine)', () => {
  let server: { url: string; close: () => Promise<void> };
  let browser: Browser;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    await buildDemo(OUT);
    server = await serveDemo(OUT);
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    errors = watchConsole(page);
    await page.goto(`${server.url}?engine=fake&device=wasm`);
  });

  afterAll(async () => {
    if (browser) await closeBrowser(browser);
    await server?.close();
  });

  it('labels the fake engine and loads with progress bars via the keyboard', async () => {
    expect(await page.locator('#engine-banner').isVisible()).toBe(true);
    expect(await page.locator('#engine-banner').textContent()).toContain('FAKE ENGINE');
    // Every form control has an accessible label.
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('select, input, textarea')].filter((el) => (el as HTMLInputElement).labels?.length === 0).map(
        (el) => el.id));
    expect(unlabelled).toEqual([]);
    await page.focus('#load');
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-state=ready]', { timeout: 20_000 });
    const progress = await page.$$eval('.progress-row progress', (els) => els.map((e) => (e as HTMLProgressElement).value));
    expect(progress).toEqual([1, 1, 1]);
    expect(await page.textContent('[data-testid=device-report]')).toContain('wasm');
  });

  it('says what each model knows and shows each example question with its expected answer', async () => {
    expect(await page.locator('[data-testid=story]').isVisible()).toBe(true);
    expect(await page.textContent('[data-testid=story]')).toContain('the sharer knows the people');
    const examples = await page.$$eval('#examples button', (bs) => bs.map((b) => b.textContent));
    expect(examples[0]).toBe('In which country does Bolan live? → Norway');
    expect(examples).toHaveLength(3);
  });

  it('Enter in the question box streams every mode into its column with a timing bar', async () => {
    await page.focus('#prompt');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('.col.done').length === 3, undefined, { timeout: 20_000 });
    for (const mode of ['receiver', 'text-relay', 'c2c']) {
      expect((await page.textContent(`[data-testid=answer-${mode}]`))?.trim().length).toBeGreaterThan(0);
      const segs = await page.$$eval(`[data-testid=timing-${mode}] .tbar-seg`, (els) => els.map((e) => e.getBoundingClientRect().width));
      expect(segs.length).toBeGreaterThan(0);
      expect(Math.max(...segs)).toBeGreaterThan(1);
    }
    expect(await page.textContent('[data-mode=text-relay] .hint-text')).toContain('answer');
    // The question is an eval item: every column says whether its answer is right, by the report's own rule.
    for (const mode of ['receiver', 'text-relay', 'c2c']) {
      const answer = (await page.textContent(`[data-testid=answer-${mode}]`))?.trim();
      const verdict = page.locator(`[data-testid=verdict-${mode}]`);
      expect(await verdict.isVisible(), mode).toBe(true);
      expect(await verdict.getAttribute('data-verdict')).toBe(answer === 'Norway' ? 'right' : 'wrong');
      expect(await verdict.textContent()).toContain('expected Norway');
    }
    // Focus stays visible: the focused textarea has an outline.
    const outline = await page.$eval('#prompt', (el) => getComputedStyle(el).outlineStyle);
    expect(outline).not.toBe('none');
  });

  it('runs the benchmark panel and draws the table and both charts', async () => {
    await page.fill('#bench-n', '2');
    await page.click('#bench-run');
    await page.waitForFunction(() => document.querySelectorAll('#bench-out svg').length === 2, undefined, { timeout: 20_000 });
    const rows = await page.$$eval('#bench-out table.results tbody tr', (trs) => trs.length);
    expect(rows).toBe(3);
    expect(await page.textContent('#bench-out')).toContain('FAKE ENGINE');
    await page.screenshot({ path: 'test-results/demo-ui-desktop.png', fullPage: true });
  });

  it('collapses to one column at phone width without horizontal scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const { scrollW, innerW, lefts } = await page.evaluate(() => ({
      scrollW: document.documentElement.scrollWidth,
      innerW: innerWidth,
      lefts: [...document.querySelectorAll('.col')].map((c) => Math.round(c.getBoundingClientRect().left)),
    }));
    expect(scrollW).toBeLessThanOrEqual(innerW);
    expect(new Set(lefts).size).toBe(1);
    await page.screenshot({ path: 'test-results/demo-ui-phone.png', fullPage: true });
  });

  it('shows the fuser fallback reason in the device report (fake engine on webgpu pretends its fuser failed)', async () => {
    const p = await browser.newPage();
    const errs = watchConsole(p);
    try {
      await p.goto(`${server.url}?engine=fake&device=webgpu&autoload=1`);
      await p.waitForSelector('body[data-state=ready]', { timeout: 20_000 });
      const rows = await p.$$eval('[data-testid=device-report] dt',
        (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent]));
      expect(rows).toContainEqual(['Fuser backend', 'cpu']);
      expect(rows).toContainEqual(['Fuser fallback reason', 'fake engine: pretends the WebGPU fuser failed']);
      expect(errs).toEqual([]);
    } finally {
      await p.close();
    }
  });

  it('logged no console errors', () => {
    expect(errors).toEqual([]);
  });
});
