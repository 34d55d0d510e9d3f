/**
 * The Chromium part of `npm run bench:scale`: the browser engine (one Web Worker per model, wasm) on the
 * preset path against the local Hub mirror, in headless system Chromium, on the engine test page
 * (test/browser-engine/page.html, built by Vite). Load time per model and for the fuser from the progress
 * events (first to last event of each; the workers load concurrently), then the same rounds as the Node run.
 * Memory: the proportional set size (PSS, so shared pages count once) of every Chromium process this
 * process started, sampled every 250 ms, over the baseline of the opened page; and the page's own
 * `measureUserAgentSpecificMemory` (JS heaps and ArrayBuffers of the page and its workers) after loading.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runnerImport } from 'vite';

const REPO = path.resolve(import.meta.dirname, '..');

/** PSS bytes of every descendant process of `root` (Chromium's browser, GPU, renderer and utility processes). */
export function descendantPss(root = process.pid) {
  const parent = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* exited meanwhile */ }
  }
  const isDescendant = (pid) => {
    for (let p = parent.get(pid); p; p = parent.get(p)) if (p === root) return true;
    return false;
  };
  let bytes = 0;
  for (const pid of parent.keys()) {
    if (!isDescendant(pid)) continue;
    try {
      bytes += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch { /* exited meanwhile */ }
  }
  return bytes;
}

function sampler() {
  let peak = 0;
  const tick = () => (peak = Math.max(peak, descendantPss()));
  tick();
  const timer = setInterval(tick, 250);
  return { peak: () => (tick(), peak), stop: () => clearInterval(timer) };
}

/** Runs the engine in Chromium; `opts` are the engine options (plain data), `prompt` the user message. */
export async function runChromium({ opts, prompt, answer, hint, reps }) {
  const { buildAndServe, launchBrowser, closeBrowser } = (await runnerImport(path.join(REPO, 'test/browser-engine/server.ts'), {
    root: REPO, configFile: false, logLevel: 'error', server: { watch: null },
  })).module;
  const server = await buildAndServe('test-results/bench-scale-dist');
  const browser = await launchBrowser(['--enable-blink-features=ForceEagerMeasureMemory']);
  const mem = sampler();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}test/browser-engine/page.html`);
    await page.waitForFunction(() => window.c2c?.ready === true);
    const baseline = descendantPss();
    const loadStart = Date.now();
    const loaded = await page.evaluate(async (opts) => {
      const windows = {};
      const t0 = performance.now();
      const engine = await window.c2c.createC2CEngine({
        ...opts,
        onProgress: (e) => {
          const w = (windows[e.model ?? 'all'] ??= { firstMs: performance.now() - t0, lastMs: 0 });
          w.lastMs = performance.now() - t0;
        },
      });
      window.__bench = engine;
      return { ms: performance.now() - t0, windows, device: engine.device, jsMemory: await window.c2c.measureMemory() };
    }, opts);
    const loadPeak = mem.peak();
    const rounds = await page.evaluate(async ({ prompt, answer, hint, reps }) => {
      const e = window.__bench;
      const messages = [{ role: 'user', content: prompt }];
      const gen = (mode, n = answer) => e.generate(messages, { mode, maxNewTokens: n, relayMaxTokens: hint });
      for (const mode of ['receiver', 'c2c', 'text-relay']) await gen(mode, 2);
      const out = [];
      for (let rep = 0; rep < reps; rep++) {
        const modes = ['receiver', 'c2c', 'text-relay'];
        const round = {};
        for (const mode of [...modes.slice(rep % 3), ...modes.slice(0, rep % 3)]) {
          const r = await gen(mode);
          const { device, ...timing } = r.timing;
          round[mode] = { timing, promptTokens: r.promptIds.length, answerTokens: r.tokenIds.length, hintTokens: r.hint?.tokenIds.length };
        }
        out.push(round);
      }
      await e.dispose();
      return out;
    }, { prompt, answer, hint, reps });
    const version = browser.version();
    return {
      part: 'chromium', browser: `Chromium ${version}`, device: loaded.device, loadMs: +loaded.ms.toFixed(1), loadWindows: loaded.windows,
      wallLoadMs: Date.now() - loadStart, jsMemoryAfterLoad: loaded.jsMemory,
      memory: { baselinePssBytes: baseline, peakExtraPssDuringLoadBytes: loadPeak - baseline, peakExtraPssBytes: mem.peak() - baseline },
      rounds,
    };
  } finally {
    mem.stop();
    await closeBrowser(browser);
    await server.close();
  }
}
