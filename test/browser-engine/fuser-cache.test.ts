/**
 * Fuser files through the browser's Cache API (headless system Chromium, the engine in its model workers): the
 * shipped tiny pair with its trained fuser served both as an official C2C folder (f32 storages, same weights)
 * and as a c2c-web folder (fuser.json with sizes and sha256). The first engine downloads each fuser file once
 * with byte progress and gives the PyTorch golden tokens; a second engine makes zero fuser requests; a cache
 * entry truncated in the Cache API is re-fetched (one request), never loaded; isPairCached / clearPairCache
 * see and clear the entries. Requests are counted by Playwright (page and worker fetches).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB, REPO } from '../engine/pair';
import { buildAndServe, closeBrowser, launchBrowser, servePair } from './server';
import { loadFuserFromDirectory } from '../../src/fuser/format/node-io';
import { addFileHashes, serializeFuser } from '../../src/fuser/format/serialise';
import { officialFolderEntries, writeOfficialFolder } from '../checkpoints/official-writer';
import type { EngineOptions } from '../../src/types';

const OUT = 'test-results/browser-fuser-cache-dist';

interface LoadOutcome {
  format?: string;
  tokenIds: number[];
  fuserFiles: Record<string, { last: number; total: number; cached?: boolean }>;
}

describe.skipIf(!PAIR)(`fuser files in the browser Cache API${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  const pair = PAIR_OR_STUB;
  const c = pair.golden.cases[0];
  let server: { url: string; close: () => Promise<void> };
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let base = '';
  const requests: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    server = await buildAndServe(OUT);
    base = servePair(pair);
    const tiny = await loadFuserFromDirectory(path.join(pair.dir, 'fuser'));
    writeOfficialFolder(path.join(REPO, OUT, 'fusers/official'),
      officialFolderEntries(tiny.config, (i) => tiny.layers[i], { dtype: 'float32' }));
    const { json, files } = serializeFuser(tiny);
    const dir = path.join(REPO, OUT, 'fusers/c2c');
    mkdirSync(dir, { recursive: true });
    for (const [name, bytes] of Object.entries(files)) writeFileSync(path.join(dir, name), bytes);
    writeFileSync(path.join(dir, 'fuser.json'), JSON.stringify(await addFileHashes(json, files)));
    browser = await launchBrowser();
    context = await browser.newContext();
    context.on('request', (r) => requests.push(new URL(r.url()).pathname));
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.url}test/browser-engine/page.html`);
    await page.waitForFunction(() => window.c2c?.ready === true);
  });

  afterAll(async () => {
    if (browser) await closeBrowser(browser);
    await server?.close();
  });

  const opts = (fuser: string): EngineOptions => ({
    sharer: { id: 'sharer', localPath: base },
    receiver: { id: 'receiver', localPath: base },
    fuser,
    device: 'wasm',
    topology: 'single',
    cache: true,
  });

  /** One engine in the page: c2c on golden case 0, the last progress event of every fuser file, then dispose. */
  const loadOnce = (o: EngineOptions): Promise<LoadOutcome> =>
    page.evaluate(
      async ({ o, user, maxNew }) => {
        const fuserFiles: Record<string, { last: number; total: number; cached?: boolean }> = {};
        const engine = await window.c2c.createC2CEngine({
          ...o,
          onProgress: (e) => {
            if (e.model !== 'fuser' || e.phase !== 'download' || !e.file) return;
            fuserFiles[e.file] = { last: e.fileLoaded ?? -1, total: e.fileTotal ?? -1, cached: e.cached };
          },
        });
        try {
          const r = await engine.generate([{ role: 'user', content: user }], { mode: 'c2c', maxNewTokens: maxNew });
          return { format: engine.device.fuserFormat, tokenIds: r.tokenIds, fuserFiles };
        } finally {
          await engine.dispose();
        }
      },
      { o, user: c.user, maxNew: pair.golden.max_new_tokens },
    );

  const fuserRequests = (prefix: string, from: number) => requests.slice(from).filter((p) => p.startsWith(prefix));

  for (const kind of ['official', 'c2c'] as const) {
    it(`${kind}: downloads each file once with byte progress, then loads from the Cache API with zero fuser requests`, async () => {
      const prefix = `/fusers/${kind}/`;
      const o = opts(prefix);
      expect(await page.evaluate((o) => window.c2c.isPairCached(o), o)).toBe(false);
      const start = requests.length;
      const first = await loadOnce(o);
      expect(first.format).toBe(kind === 'official' ? 'official' : 'c2c-web');
      expect(first.tokenIds).toEqual(c.c2c.output_ids);
      const fetched = fuserRequests(prefix, start).filter((p) => !p.endsWith('/fuser.json') || kind === 'c2c');
      expect(fetched.length).toBeGreaterThan(0);
      expect(new Set(fetched).size).toBe(fetched.length);
      const reported = Object.entries(first.fuserFiles);
      expect(reported.length).toBe(fetched.length);
      for (const [, f] of reported) expect(f).toMatchObject({ cached: false, last: f.total });

      expect(await page.evaluate((o) => window.c2c.isPairCached(o), o)).toBe(true);
      const mid = requests.length;
      const second = await loadOnce(o);
      expect(fuserRequests(prefix, mid)).toEqual([]);
      expect(second.tokenIds).toEqual(c.c2c.output_ids);
      expect(Object.values(second.fuserFiles).every((f) => f.cached === true)).toBe(true);
    });
  }

  it('a truncated Cache API entry is re-fetched (one request), never loaded; clearPairCache empties the fuser entries', async () => {
    const o = opts('/fusers/official/');
    const file = `${server.url}fusers/official/final/projector_1.pt`;
    const cut = await page.evaluate(async (url) => {
      const cache = await caches.open('transformers-cache');
      const res = await cache.match(url);
      if (!res) return -1;
      const body = await res.arrayBuffer();
      await cache.put(url, new Response(body.slice(0, body.byteLength >> 1), { headers: res.headers }));
      return body.byteLength;
    }, file);
    expect(cut).toBeGreaterThan(0);
    expect(await page.evaluate((o) => window.c2c.isPairCached(o), o)).toBe(false);
    const start = requests.length;
    const again = await loadOnce(o);
    expect(fuserRequests('/fusers/official/', start)).toEqual(['/fusers/official/final/projector_1.pt']);
    expect(again.fuserFiles['final/projector_1.pt']).toMatchObject({ cached: false, last: cut });
    expect(again.tokenIds).toEqual(c.c2c.output_ids);

    const status = await page.evaluate((o) => window.c2c.getPairCacheStatus(o), o);
    expect(status).toMatchObject({ cached: true, fuser: { state: 'cached', format: 'official' } });
    const cleared = await page.evaluate((o) => window.c2c.clearPairCache(o), o);
    expect(cleared.fuserFiles).toBe(status.fuser.files.length);
    expect(await page.evaluate((o) => window.c2c.isPairCached(o), o)).toBe(false);
    expect(pageErrors).toEqual([]);
  });
});
