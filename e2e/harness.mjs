/**
 * Shared e2e/benchmark plumbing: build the demo with Vite, serve the build with `vite preview` on
 * 127.0.0.1, launch the system Chromium headless with WebGPU enabled, and close it without hanging.
 * Plain ESM so both vitest (e2e/*.test.ts) and node scripts (scripts/bench.mjs) can import it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, preview } from 'vite';
import { chromium } from 'playwright-core';
import { c2cModelsPlugin } from '../scripts/vite-models-plugin.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Flags measured in docs: only --enable-unsafe-webgpu gives an adapter (SwiftShader without a GPU). */
export const CHROME_ARGS = [
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
  '--disable-quic', '--enable-unsafe-webgpu',
];

export function chromePath() {
  return process.env.CHROME_PATH ?? '/usr/bin/chromium';
}

/** `vite build` of the demo into `outDir` (relative to the repo), models copied in by the plugin. */
export async function buildDemo(outDir = 'dist') {
  await build({ root: REPO, logLevel: 'warn', plugins: [c2cModelsPlugin()], build: { outDir, emptyOutDir: true } });
  return path.resolve(REPO, outDir);
}

/** Serves a built demo; resolves to `{ url, close }` (url ends with '/'). */
export async function serveDemo(outDir = 'dist', port = 0) {
  const server = await preview({
    root: REPO, logLevel: 'warn', plugins: [c2cModelsPlugin()],
    build: { outDir }, preview: { host: '127.0.0.1', port, strictPort: port !== 0, open: false },
  });
  const addr = server.httpServer.address();
  const url = typeof addr === 'object' && addr ? `http://127.0.0.1:${addr.port}/` : server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview did not report an address');
  return { url, close: () => new Promise((resolve) => server.httpServer.close(() => resolve(undefined))) };
}

/** `extraArgs`: e.g. `--js-flags=--expose-gc` for the memory tests. */
export async function launchBrowser(extraArgs = []) {
  return chromium.launch({ executablePath: chromePath(), headless: true, args: [...CHROME_ARGS, ...extraArgs] });
}

/**
 * `browser.close()` has been seen never to resolve after long runs: race it against 15 s. Playwright still
 * kills the Chromium it launched when this process exits.
 */
export async function closeBrowser(browser) {
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), 15_000); });
  const r = await Promise.race([browser.close().then(() => 'closed', () => 'error'), timeout]);
  clearTimeout(timer);
  return r;
}

/** Collects console errors and uncaught page errors (the demo must produce none). */
export function watchConsole(page) {
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}
