/**
 * The WebGPU fuser in headless Chromium (`--enable-unsafe-webgpu` → SwiftShader): the kernel test page is
 * bundled with vite's programmatic `build()`, served with the golden fixtures from a loopback HTTP server on a
 * random port (WebGPU needs a secure context), and must match a golden fixture within 1e-4; the int8 fuser
 * (Chromium's own WGSL language features decide the unpack path) must match the CPU reference on its weights.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { FIXTURE_ROOT } from './fixtures';
import type { BrowserFixtureResult, BrowserInt8Result } from './browser/page';

const CHROME = process.env.CHROME_PATH ?? '/usr/bin/chromium';
const skip = existsSync(CHROME) ? undefined : `Chromium not found at ${CHROME} (set CHROME_PATH)`;
const MIME: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json' };

/** Serves `routes` prefixes from directories; nothing outside them. */
function serve(routes: [string, string][]): Promise<Server> {
  const server = createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    for (const [prefix, dir] of routes) {
      if (!url.startsWith(prefix)) continue;
      const file = normalize(join(dir, url.slice(prefix.length) || 'index.html'));
      if (file.startsWith(dir) && existsSync(file) && statSync(file).isFile()) {
        res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
        res.end(readFileSync(file));
        return;
      }
    }
    res.writeHead(404).end();
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: Parameters<typeof clearTimeout>[0];
  try {
    return await Promise.race([p, new Promise<undefined>((ok) => (timer = setTimeout(ok, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe.skipIf(skip)('WebGPU fuser in headless Chromium', () => {
  let outDir: string;
  let server: Server;
  let browser: Browser;

  beforeAll(async () => {
    outDir = mkdtempSync(join(tmpdir(), 'c2c-webgpu-page-'));
    const { build } = await import('vite');
    await build({
      configFile: false,
      logLevel: 'silent',
      root: resolve(import.meta.dirname, 'browser'),
      build: { outDir, emptyOutDir: true, target: 'esnext', minify: false },
    });
    server = await serve([
      ['/fixtures/', FIXTURE_ROOT],
      ['/', outDir],
    ]);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROME,
      headless: true,
      args: ['--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--no-first-run', '--disable-quic'],
    });
  });

  afterAll(async () => {
    // browser.close() can hang after long SwiftShader runs although Chromium has exited.
    if (browser) await withTimeout(browser.close(), 15_000);
    server?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  /** A fresh page on the built kernel test page, once it reports ready; console and page errors collected. */
  async function openKernelPage(): Promise<{ page: Page; logs: string[] }> {
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    const port = (server.address() as AddressInfo).port;
    await page.goto(`http://127.0.0.1:${port}/index.html`);
    await page.waitForFunction(() => document.title === 'ready', undefined, { timeout: 30_000 });
    return { page, logs };
  }

  it("matches the golden fixture 'sharer_more_gates' within 1e-4, closed gates bit-identical", async () => {
    const { page, logs } = await openKernelPage();
    const result = (await page.evaluate((name) => (globalThis as unknown as { runFixture(n: string): Promise<unknown> }).runFixture(
      name), 'sharer_more_gates')) as BrowserFixtureResult;
    console.log(`[browser] adapter ${result.adapter} dtype ${result.dtype}: ${result.cases.map((c) => `seq ${c.seq} max abs error ${c.maxAbsError.toExponential(2)}`).join(', ')}`);
    expect(result.cases.length, logs.join('\n')).toBeGreaterThan(0);
    for (const c of result.cases) {
      expect(c.maxAbsError, `seq ${c.seq}`).toBeLessThanOrEqual(1e-4);
      expect(c.closedBitIdentical).toBe(true);
    }
    await page.close();
  });

  it("int8 weights: 'sharer_more_gates' loaded as int8 matches the CPU reference on the same weights within 1e-4", async () => {
    const { page, logs } = await openKernelPage();
    const result = (await page.evaluate((name) => (globalThis as unknown as {
      runFixtureInt8(n: string): Promise<unknown> }).runFixtureInt8(name), 'sharer_more_gates')) as BrowserInt8Result;
    console.log(`[browser int8] weightDType ${result.weightDType}, unpack4xI8 ${result.packed4x8}, ${result.weightBytes} B, max abs error ${result.maxAbsError.toExponential(2)}`);
    expect(result.weightDType, logs.join('\n')).toBe('int8');
    expect(result.maxAbsError).toBeLessThanOrEqual(1e-4);
    await page.close();
  });
});
