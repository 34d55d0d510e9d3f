#!/usr/bin/env node
/**
 * `npm run screenshot`: the README's demo screenshot from a current run. Builds the demo, loads the embedded pair
 * on wasm in headless system Chromium, runs one test-split question in every mode through the page (as a user
 * clicking an example would), and writes docs/demo-screenshot.png.
 *
 * Flags: --item <id> (an eval_test.jsonl id; default test-0021, a short-answer country question), --out <png>.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO, buildDemo, closeBrowser, launchBrowser, serveDemo, watchConsole } from '../e2e/harness.mjs';

const { values } = parseArgs({ options: { item: { type: 'string', default: 'test-0021' },
  out: { type: 'string', default: 'docs/demo-screenshot.png' } } });
const items = readFileSync(path.join(REPO, 'models/c2c-tiny/eval_test.jsonl'), 'utf8').split('\n').filter(Boolean)
  .map((l) => JSON.parse(l));
const item = items.find((it) => it.id === values.item);
if (!item) throw new Error(`--item ${values.item}: no such id in models/c2c-tiny/eval_test.jsonl`);

const dist = 'bench/out/screenshot-dist';
await buildDemo(dist);
const server = await serveDemo(dist);
const browser = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors = watchConsole(page);
  await page.goto(`${server.url}?device=wasm`);
  await page.evaluate(() => window.c2cDemo.ready);
  await page.click('#load');
  await page.waitForSelector('body[data-state=ready]', { timeout: 120_000 });
  await page.check('#with-sharer');
  await page.fill('#prompt', item.prompt);
  // One untimed question first (another item: the same prompt again would be served from the prefix cache), so the
  // shown timings are not those of ORT's slower first runs.
  const warm = items.find((it) => it.id !== item.id && it.type === item.type);
  await page.evaluate((p) => window.c2cDemo.ask(p), warm.prompt);
  const results = await page.evaluate((p) => window.c2cDemo.ask(p), item.prompt);
  await page.screenshot({ path: path.resolve(REPO, values.out), fullPage: true });
  for (const [mode, r] of Object.entries(results)) console.log(`[screenshot] ${mode}: ${JSON.stringify(r.text.trim())}`);
  console.log(`[screenshot] ${item.id} (expected ${item.answer}) → ${values.out}`);
  if (errors.length) throw new Error(`console errors: ${errors.join('; ')}`);
} finally {
  await closeBrowser(browser);
  await server.close();
}
