/**
 * The official-checkpoint loader in a real browser (system Chromium, headless): the fixture folder is
 * served by a Vite dev server, fetched through `urlCheckpointReader`, unzipped and unpickled in the page,
 * and the loaded fuser reproduces the expected fused outputs there. Skipped when Chromium is absent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type ViteDevServer } from 'vite';
import { chromium, type Browser } from 'playwright-core';

const REPO = join(import.meta.dirname, '..', '..');
const CHROME = process.env.CHROME_PATH ?? '/usr/bin/chromium';

// Plain JS run in the page (a string, so vitest's transform does not rewrite its dynamic imports).
const PAGE_SCRIPT = `(async () => {
  const ck = await import('/src/checkpoints/index.ts');
  const ref = await import('/src/fuser/reference.ts');
  const st = await import('/src/fuser/safetensors.ts');
  const { maxAbsDiffKV } = await import('/test/util/allclose.ts');
  const dir = '/test/fixtures/official/tiny_llama_knn/';
  const w = await ck.loadOfficialCheckpoint(ck.urlCheckpointReader(dir));
  const exp = st.parseSafetensors(new Uint8Array(await (await fetch(dir + 'expected.safetensors')).arrayBuffer()));
  const cache = (prefix, n) => Array.from({ length: n }, (_, l) => {
    const kv = (p) => {
      const t = exp.tensors.get(prefix + '.' + l + '.' + p);
      return { data: st.tensorToFloat32(t), heads: t.shape[0], seq: t.shape[1], headDim: t.shape[2] };
    };
    return { key: kv('key'), value: kv('value') };
  });
  let maxDiff = 0;
  for (let c = 0; c < 2; c++) {
    const fused = ref.fuseCache(w, cache('c' + c + '.receiver', 3), cache('c' + c + '.sharer', 5));
    const want = cache('c' + c + '.fused', 3);
    maxDiff = Math.max(maxDiff, maxAbsDiffKV(fused, want)); // NaN-poisoned: a non-finite output fails below
  }
  // A hostile file fetched the same way is refused with the named error class.
  const evil = new Uint8Array(await (await fetch('/test/fixtures/official/malicious/os_system.pt')).arrayBuffer());
  let refusal = '';
  try { ck.readTorchStateDict(evil, 'os_system.pt'); } catch (e) { refusal = e.name + ': ' + e.message; }
  return { layerMap: w.config.layerMap, alignment: w.config.alignment, maxDiff, refusal };
})()`;

describe.skipIf(!existsSync(CHROME))('official checkpoint loading in Chromium', () => {
  let server: ViteDevServer;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    server = await createServer({
      root: REPO,
      configFile: false,
      logLevel: 'error',
      server: { host: '127.0.0.1', port: 0, watch: null },
      optimizeDeps: { noDiscovery: true, include: [] },
    });
    await server.listen();
    const addr = server.httpServer!.address();
    base = typeof addr === 'object' && addr ? `http://127.0.0.1:${addr.port}/` : '';
    browser = await chromium.launch({ executablePath: CHROME, headless: true,
      args: ['--disable-background-networking', '--no-first-run'] });
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await server?.close();
  });

  it('fetches, parses and fuses tiny_llama_knn in the page', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}test/fixtures/official/tiny_llama_knn/config.json`);
    const result = (await page.evaluate(PAGE_SCRIPT)) as { layerMap: number[]; alignment: unknown; maxDiff: number; refusal: string };
    expect(errors).toEqual([]);
    expect(result.layerMap).toEqual([0, 2, 4]);
    expect(result.alignment).toEqual({ enabled: true, strategy: 'longest' });
    expect(result.maxDiff).toBeLessThan(1e-5);
    expect(result.refusal).toMatch(/^CheckpointFormatError: .*'posix system' is not allowed/);
  });
});
