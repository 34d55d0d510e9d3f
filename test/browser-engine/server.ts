/**
 * Builds the engine test page (test/browser-engine/page.html) with Vite, serves it on 127.0.0.1 with
 * `vite preview` (COOP/COEP from vite.config.ts, models/ served by the models plugin), and launches the
 * system Chromium with WebGPU enabled. A build, not the dev server: dependency discovery in dev reloads pages.
 */
import path from 'node:path';
import { cpSync, mkdirSync } from 'node:fs';
import type { Page } from 'playwright-core';
import type { TestPair } from '../engine/pair';
import { build, preview } from 'vite';
import { c2cModelsPlugin } from '../../scripts/vite-models-plugin.mjs';
import { REPO, launchBrowser, closeBrowser } from '../../e2e/harness.mjs';

export const OUT_DIR = 'test-results/browser-engine-dist';

/** `outDir`: one per test file (files run in parallel and must not share a build). */
export async function buildAndServe(outDir = OUT_DIR): Promise<{ url: string; close: () => Promise<void> }> {
  await build({
    root: REPO,
    logLevel: 'warn',
    plugins: [c2cModelsPlugin()],
    build: { outDir, emptyOutDir: true, rollupOptions: { input: path.join(REPO, 'test/browser-engine/page.html') } },
  });
  const server = await preview({
    root: REPO,
    logLevel: 'warn',
    plugins: [c2cModelsPlugin()],
    build: { outDir },
    preview: { host: '127.0.0.1', port: 0, open: false },
  });
  const addr = server.httpServer.address();
  if (!addr || typeof addr !== 'object') throw new Error('vite preview did not report an address');
  return {
    url: `http://127.0.0.1:${addr.port}/`,
    close: () => new Promise<void>((resolve) => server.httpServer.close(() => resolve())),
  };
}

/**
 * The base URL the page loads the pair from: a pair under models/ is served by the models plugin; one outside
 * (C2C_TEST_PAIR, a generated pair) is copied next to the built page, under `name`.
 */
export function servePair(pair: TestPair, outDir = OUT_DIR, name = 'pair'): string {
  if (pair.rel.startsWith('models/')) return `/${pair.rel}/`;
  mkdirSync(path.join(REPO, outDir, name), { recursive: true });
  cpSync(pair.dir, path.join(REPO, outDir, name), { recursive: true });
  return `/${name}/`;
}

export { launchBrowser, closeBrowser };

export interface TestPage {
  page: Page;
  /** Where the page loads the pair from (servePair). */
  base: string;
  close(): Promise<void>;
}

/**
 * Builds and serves the test page, opens it in a fresh Chromium (`args` added to the harness flags) and waits
 * for `window.c2c`. `onPage` runs before navigation (to catch errors of the first load).
 */
export async function openTestPage(pair: TestPair, o: { outDir?: string; args?: string[]; onPage?: (
  p: Page) => void } = {}): Promise<TestPage> {
  const server = await buildAndServe(o.outDir);
  const base = servePair(pair, o.outDir);
  const browser = await launchBrowser(o.args);
  const page = await browser.newPage();
  o.onPage?.(page);
  await page.goto(`${server.url}test/browser-engine/page.html`);
  await page.waitForFunction(() => window.c2c?.ready === true);
  return {
    page,
    base,
    close: async () => {
      await closeBrowser(browser);
      await server.close();
    },
  };
}
