/**
 * Fuser loading over HTTP in Node, both formats, through the engine's loader (loadFuserSource + nodeFuserReader +
 * the on-disk cache): a local server on 127.0.0.1 counts requests. The second load makes none; a truncated or
 * corrupted cache entry is re-fetched, never loaded; a cut download fails typed and is not cached; format
 * detection names what it looked for; a memory budget refuses before any weight file is requested.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortError, C2CError, FuserFormatError, MemoryBudgetError } from '../../src/errors';
import { loadFuserSource } from '../../src/fuser-source';
import { nodeFuserReader } from '../../src/fuser-source/node';
import { nodeFileCache, cachePathOf } from '../../src/fuser/format/node-cache';
import { addFileHashes, serializeFuser } from '../../src/fuser/format/serialise';
import type { FileProgress } from '../../src/fuser/format/files';
import { randomFuserWeights } from '../../src/fuser/random-weights';
import type { FuserWeights } from '../../src/types';
import { officialFolderFiles } from '../checkpoints/official-writer';
import { serveFolders, type TestServer } from './serve';

const weights: FuserWeights = (() => {
  const w = randomFuserWeights(21, { numMlpLayers: 4, hiddenDim: 16, intermediateDim: 24 });
  return { ...w, config: { ...w.config, alignment: { enabled: true, strategy: 'first' } } };
})();

async function c2cFolder(): Promise<Record<string, Uint8Array>> {
  const { json, files } = serializeFuser(weights);
  return { 'fuser.json': new TextEncoder().encode(JSON.stringify(await addFileHashes(json, files))), ...files };
}

const FORMATS = [
  { format: 'c2c-web', prefix: 'c2c', weightFile: 'fuser.safetensors' },
  { format: 'official', prefix: 'official', weightFile: 'final/projector_1.pt' },
] as const;

function expectSameWeights(a: FuserWeights, b: FuserWeights): void {
  expect(a.config.layerMap).toEqual(b.config.layerMap);
  expect(a.config.alignment).toEqual(b.config.alignment);
  expect(a.layers[2].value.projMlp2[1].w1.weight).toEqual(b.layers[2].value.projMlp2[1].w1.weight);
  expect(a.layers[0].key.in.bias).toEqual(b.layers[0].key.in.bias);
  expect(a.layers[1].value.gateLogit).toBe(b.layers[1].value.gateLogit);
}

describe('fuser loading over HTTP with the Node file cache', () => {
  let server: TestServer;
  let folders: Record<string, Record<string, Uint8Array>>;
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'c2c-fcache-'));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    folders = {
      c2c: await c2cFolder(),
      official: officialFolderFiles(weights, { dtype: 'float32' }),
      empty: { 'README.md': new TextEncoder().encode('nothing here') },
      cut: officialFolderFiles(weights, { dtype: 'float32' }),
    };
    server = await serveFolders(folders);
  });
  afterAll(async () => {
    await server?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  type Extra = { onProgress?: (p: FileProgress) => void; signal?: AbortSignal; budget?: number; format?: 'official' };
  const load = (prefix: string, cacheDir: string, extra: Extra = {}) =>
    loadFuserSource(
      nodeFuserReader(`${server.url}${prefix}/`, { cache: nodeFileCache(cacheDir), onProgress: extra.onProgress, signal: extra.signal }),
      { url: `${server.url}${prefix}/`, format: extra.format, memoryBudgetBytes: extra.budget },
      extra.signal,
    );

  for (const { format, prefix } of FORMATS) {
    it(`${format}: the first load fetches each file once with byte progress; the second fetches nothing`, async () => {
      const cache = tmp();
      const progress: FileProgress[] = [];
      const before = server.count(`/${prefix}/`);
      const first = await load(prefix, cache, { onProgress: (p) => progress.push(p) });
      expect(first.format).toBe(format);
      expectSameWeights(first.weights, weights);
      const served = server.log.slice(-(server.count(`/${prefix}/`) - before));
      // Each file once (the official folder also answers one 404 for the fuser.json probe).
      expect(new Set(served).size).toBe(served.length);
      const names = Object.keys(folders[prefix]);
      expect(first.files.map((f) => f.file).sort()).toEqual(names.sort());
      for (const f of first.files) {
        expect(f.cached).toBe(false);
        expect(f.bytes).toBe(folders[prefix][f.file].length);
        const last = progress.filter((p) => p.file === f.file).at(-1)!;
        expect(last).toMatchObject({ loaded: f.bytes, total: f.bytes, cached: false });
      }
      // fuser.json lists sha256 for the c2c-web file: checked; the official files have Content-Length only.
      const weightFile = first.files.find((f) => f.file === (format === 'c2c-web' ? 'fuser.safetensors' : 'final/projector_0.pt'))!;
      expect(weightFile.verified).toBe(format === 'c2c-web' ? 'sha256' : 'content-length');

      const mid = server.count();
      const cachedProgress: FileProgress[] = [];
      const second = await load(prefix, cache, { onProgress: (p) => cachedProgress.push(p) });
      expect(server.count() - mid).toBe(0);
      expect(second.files.every((f) => f.cached)).toBe(true);
      expect(cachedProgress.every((p) => p.cached && p.loaded === p.total)).toBe(true);
      expectSameWeights(second.weights, weights);
    });

    it(`${format}: a truncated cache entry is re-fetched (one request), never loaded`, async () => {
      const cache = tmp();
      await load(prefix, cache);
      const { weightFile } = FORMATS.find((f) => f.prefix === prefix)!;
      const onDisk = join(cache, cachePathOf(`${server.url}${prefix}/${weightFile}`));
      const full = statSync(onDisk).size;
      truncateSync(onDisk, Math.floor(full / 2));
      const before = server.count();
      const again = await load(prefix, cache);
      expect(server.log.slice(before)).toEqual([`/${prefix}/${weightFile}`]);
      expect(again.files.find((f) => f.file === weightFile)).toMatchObject({ cached: false, refetched: true });
      expectSameWeights(again.weights, weights);
      expect(statSync(onDisk).size).toBe(full); // the cache holds the whole file again
    });
  }

  it('c2c-web: a same-length corruption of a cached file is caught by the manifest sha256 and re-fetched', async () => {
    const cache = tmp();
    await load('c2c', cache);
    const onDisk = join(cache, cachePathOf(`${server.url}c2c/fuser.safetensors`));
    const bytes = readFileSync(onDisk);
    bytes[bytes.length - 3] ^= 0xff;
    writeFileSync(onDisk, bytes);
    const before = server.count();
    const again = await load('c2c', cache);
    expect(server.log.slice(before)).toEqual(['/c2c/fuser.safetensors']);
    expect(again.files.find((f) => f.file === 'fuser.safetensors')).toMatchObject({ refetched: true, verified: 'sha256' });
    expectSameWeights(again.weights, weights);
  });

  it('a download cut short (Content-Length larger than the body, no manifest size) fails typed and is not cached', async () => {
    const cache = tmp();
    server.truncate('/cut/final/projector_1.pt', 1000);
    const err = await load('cut', cache).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(C2CError);
    expect((err as Error).message).toMatch(/projector_1\.pt.*(arrived truncated|failed after 1000 bytes)/);
    expect(await nodeFileCache(cache).stat(`${server.url}cut/final/projector_1.pt`)).toBeUndefined();
    // The files before it were complete and stay cached.
    expect(await nodeFileCache(cache).stat(`${server.url}cut/final/projector_0.pt`)).toBeDefined();
  });

  it('works offline: a folder loaded once loads from the cache with the server gone', async () => {
    const cache = tmp();
    const offline = await serveFolders({ official: folders.official });
    const url = `${offline.url}official/`;
    await loadFuserSource(nodeFuserReader(url, { cache: nodeFileCache(cache) }), { url });
    await offline.close();
    const again = await loadFuserSource(nodeFuserReader(url, { cache: nodeFileCache(cache) }), { url });
    expect(again.format).toBe('official');
    expect(again.files.every((f) => f.cached)).toBe(true);
    expectSameWeights(again.weights, weights);
    // Without the cache the same load cannot reach the server: a typed error, not a hang.
    const err = await loadFuserSource(nodeFuserReader(url), { url }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(C2CError);
  });

  it('names what it looked for when the folder holds neither format', async () => {
    const err = await load('empty', tmp()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FuserFormatError);
    const looked = /looked for a fuser\.json \(c2c-web format\) and for config\.json \+ final\/projector_config\.json \(official C2C layout\)/;
    expect((err as Error).message).toMatch(looked);
  });

  it('a server answering missing paths with its index page (200 HTML): detection is not fooled and caches no page', async () => {
    const spa = await serveFolders({ official: folders.official, empty: folders.empty },
      new TextEncoder().encode('<!doctype html><title>app</title>'));
    const cache = tmp();
    try {
      const url = `${spa.url}official/`;
      const r = await loadFuserSource(nodeFuserReader(url, { cache: nodeFileCache(cache) }), { url });
      expect(r.format).toBe('official');
      expect(await nodeFileCache(cache).stat(`${url}fuser.json`)).toBeUndefined();
      const empty = `${spa.url}empty/`;
      const err = await loadFuserSource(nodeFuserReader(empty, { cache: nodeFileCache(cache) }), { url: empty }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FuserFormatError);
      expect((err as Error).message).toMatch(/holds no fuser/);
    } finally {
      await spa.close();
    }
  });

  it('an explicit format skips detection (no fuser.json probe)', async () => {
    const before = server.count();
    const r = await load('official', tmp(), { format: 'official' });
    expect(r.format).toBe('official');
    expect(server.log.slice(before)).not.toContain('/official/fuser.json');
  });

  it('a memory budget refuses before any weight file is requested', async () => {
    for (const { prefix, weightFile } of FORMATS) {
      const before = server.count();
      const err = await load(prefix, tmp(), { budget: 4096 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MemoryBudgetError);
      expect((err as Error).message).toMatch(/No weight file was downloaded/);
      expect(server.log.slice(before).some((p) => p.endsWith('.pt') || p.endsWith('.safetensors'))).toBe(false);
      // A budget that fits loads.
      await expect(load(prefix, tmp(), { budget: 1 << 30 })).resolves.toMatchObject({ format: prefix === 'c2c' ? 'c2c-web' : 'official' });
      void weightFile;
    }
  });

  it('an abort stops the load with AbortError', async () => {
    const ac = new AbortController();
    const err = await load('official', tmp(), {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.file.endsWith('.pt')) ac.abort();
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
  });
});
