#!/usr/bin/env node
/**
 * `npm run bench`: runs the embedded pair's held-out eval set in every mode in headless Chromium, once per
 * device, through the demo's own benchmark code (window.c2cDemo.bench). Writes bench/results.json, an HTML
 * report (bench/out/report.html) and a PNG of it (bench/out/report.png), and prints accuracy (beside the
 * PyTorch report's), mean/p90 latency per mode, C2C speedup over text relay and C2C latency over receiver-only.
 *
 * Flags: --devices wasm,webgpu[:N] (per-device item limit, e.g. webgpu:8), --limit N (all devices),
 *        --modes receiver,sharer,text-relay,c2c, --topology workers|single, --no-build, --out bench/results.json.
 * Without a GPU, Chromium's WebGPU is SwiftShader (a CPU rasterizer): its timings are not GPU numbers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO, buildDemo, closeBrowser, launchBrowser, serveDemo, watchConsole } from '../e2e/harness.mjs';
import { formatTable } from '../bench/format.mjs';

const args = process.argv.slice(2);
const value = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const limitAll = value('--limit') ? Number(value('--limit')) : undefined;
const devices = value('--devices', 'wasm,webgpu').split(',').filter(Boolean).map((d) => {
  const [name, n] = d.split(':');
  if (!['wasm', 'webgpu', 'auto'].includes(name)) throw new Error(`--devices: unknown device "${name}"`);
  return { name, limit: n ? Number(n) : limitAll };
});
const topology = value('--topology', 'workers');
const modes = value('--modes', 'receiver,sharer,text-relay,c2c').split(',');
const outJson = path.resolve(REPO, value('--out', 'bench/results.json'));
const outDir = path.resolve(REPO, 'bench/out');
mkdirSync(outDir, { recursive: true });

const distDir = 'bench/out/dist';
if (!args.includes('--no-build')) await buildDemo(distDir);
const server = await serveDemo(distDir);
const browser = await launchBrowser();
const runs = [];
let reference = {};
let fullSetSize;
let failed = false;
try {
  for (const dev of devices) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors = watchConsole(page);
    await page.goto(`${server.url}?device=${dev.name}&topology=${topology}`);
    await page.evaluate(() => window.c2cDemo.ready);
    const t0 = Date.now();
    await page.evaluate((d) => window.c2cDemo.load(undefined, d), dev.name);
    const info = await page.evaluate(() => ({ device: window.c2cDemo.device(), n: window.c2cDemo.evalItems().length,
      ref: window.c2cDemo.reference() }));
    fullSetSize = info.n;
    reference = info.ref;
    const n = Math.min(dev.limit ?? info.n, info.n);
    const loadS = ((Date.now() - t0) / 1000).toFixed(1);
    console.log(`[bench] ${dev.name}: loaded in ${loadS} s on ${info.device.backend}; ${n}/${info.n} items × ${modes.length} modes…`);
    const run = await page.evaluate(([limit, m]) => window.c2cDemo.bench(limit, m), [n, modes]);
    run.requestedDevice = dev.name;
    run.topology = topology;
    run.consoleErrors = errors;
    runs.push(run);
    await page.screenshot({ path: path.join(outDir, `demo-${dev.name}.png`), fullPage: true });
    console.log(formatTable(run, reference, fullSetSize));
    await page.close();
  }
  const html = await (async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    const s = await page.evaluate(([r, n, ref]) => window.c2cDemo.reportHtml(r, n, ref), [runs, fullSetSize, reference]);
    await page.close();
    return s;
  })();
  writeFileSync(path.join(outDir, 'report.html'), html);
  const shot = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  await shot.setContent(html);
  await shot.screenshot({ path: path.join(outDir, 'report.png'), fullPage: true });
  await shot.close();
  const compact = runs.map(({ results, ...rest }) => ({ ...rest, results: results.map((r) => ({
    item: r.item, mode: r.mode, text: r.text, correct: r.correct, totalMs: Math.round(r.timing.totalMs * 10) / 10,
  })) }));
  writeFileSync(outJson, JSON.stringify({ generatedAt: new Date().toISOString(), argv: args, fullSetSize, reference,
    runs: compact }, null, 1) + '\n');
  writeFileSync(path.join(outDir, 'results-full.json'), JSON.stringify({ fullSetSize, reference, runs }, null, 1) + '\n');
  console.log(`[bench] wrote ${path.relative(REPO, outJson)}, bench/out/report.html, bench/out/report.png`);
} catch (e) {
  failed = true;
  console.error(`[bench] failed: ${e instanceof Error ? e.stack : e}`);
} finally {
  await closeBrowser(browser);
  await server.close();
}
process.exit(failed ? 1 : 0);
