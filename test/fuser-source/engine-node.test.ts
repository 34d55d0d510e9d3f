/**
 * The Node engine loading its fuser the way a Hub user does: the shipped tiny pair's trained fuser rewritten in
 * the official C2C layout (f32 storages, so the weights are the same bits) and served over HTTP on 127.0.0.1.
 * The engine detects the format, reports it, streams per-file byte progress, gives the PyTorch golden tokens,
 * caches every fuser file under transformers.js's env.cacheDir (a second engine makes zero fuser requests),
 * and isPairCached / clearPairCache see and clear exactly those files. The sharer depth, which the official
 * layout does not store, comes from the sharer model in the same host, and a workers-style split names the fix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { env } from '@huggingface/transformers';
import { ShapeMismatchError } from '../../src/errors';
import { clearPairCache, createNodeC2CEngine, getPairCacheStatus, isPairCached } from '../../src/node';
import { loadFuserFromDirectory } from '../../src/fuser/format/node-io';
import { loadPair, fuserRequest } from '../../src/engine/assemble';
import { ModelHost } from '../../src/hosts/model-host';
import { nodePlatform } from '../../src/hosts/node-platform';
import type { EngineOptions, FuserWeights, ProgressEvent } from '../../src/types';
import { officialFolderFiles } from '../checkpoints/official-writer';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB } from '../engine/pair';
import { serveFolders, type TestServer } from './serve';

describe.skipIf(!PAIR)(`Node engine with an official-layout fuser over HTTP${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  const pair = PAIR_OR_STUB;
  const g = pair.golden;
  const c = g.cases[0];
  let server: TestServer;
  let tiny: FuserWeights;
  let cacheDir: string;
  const savedCacheDir = env.cacheDir;

  beforeAll(async () => {
    tiny = await loadFuserFromDirectory(path.join(pair.dir, 'fuser'));
    const nonTerminal = { ...tiny, config: { ...tiny.config, layerMap: tiny.config.layerMap.map((s) => Math.max(0, s - 1)) } };
    server = await serveFolders({
      official: officialFolderFiles(tiny, { dtype: 'float32' }),
      shifted: officialFolderFiles(nonTerminal, { dtype: 'float32' }),
    });
    cacheDir = mkdtempSync(path.join(tmpdir(), 'c2c-engine-cache-'));
    env.cacheDir = cacheDir;
  });
  afterAll(async () => {
    env.cacheDir = savedCacheDir;
    await server?.close();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  const options = (fuser: string, onProgress?: (e: ProgressEvent) => void): EngineOptions => ({
    sharer: { id: 'sharer', localPath: pair.dir },
    receiver: { id: 'receiver', localPath: pair.dir },
    fuser,
    cache: true,
    onProgress,
  });
  const c2c = async (opts: EngineOptions) => {
    const engine = await createNodeC2CEngine(opts);
    try {
      const r = await engine.generate([{ role: 'user', content: c.user }], { mode: 'c2c', maxNewTokens: g.max_new_tokens });
      return { device: engine.device, tokenIds: r.tokenIds };
    } finally {
      await engine.dispose();
    }
  };

  it('loads the official folder by URL, reports it, streams fuser bytes, gives the golden tokens; the second engine fetches nothing',
    async () => {
    const url = `${server.url}official/`;
    const events: ProgressEvent[] = [];
    expect(await isPairCached(options(url))).toBe(false);
    const first = await c2c(options(url, (e) => events.push(e)));
    expect(first.device.fuserFormat).toBe('official');
    expect(first.tokenIds).toEqual(c.c2c.output_ids);
    const fuserEvents = events.filter((e) => e.model === 'fuser' && e.phase === 'download');
    const pt = fuserEvents.filter((e) => e.file === 'final/projector_0.pt');
    expect(pt.at(-1)).toMatchObject({ cached: false });
    expect(pt.at(-1)!.fileLoaded).toBe(pt.at(-1)!.fileTotal);
    expect(pt.at(-1)!.fileTotal).toBeGreaterThan(10_000);
    // Every fuser file reported, and the aggregated download total counts all their bytes.
    const perFile = new Map(fuserEvents.map((e) => [e.file!, e.fileTotal!]));
    expect(perFile.size).toBe(2 + 2 * tiny.config.receiver.numLayers);
    const fuserBytes = [...perFile.values()].reduce((a, b) => a + b, 0);
    const lastDownload = events.filter((e) => e.phase === 'download').at(-1)!;
    expect(lastDownload.total).toBeGreaterThanOrEqual(fuserBytes);
    for (let i = 1; i < events.length; i++) {
      if (events[i].phase === events[i - 1].phase) expect(events[i].progress).toBeGreaterThanOrEqual(events[i - 1].progress);
    }

    const status = await getPairCacheStatus(options(url));
    expect(status).toMatchObject({ cached: true, fuser: { state: 'cached', format: 'official' } });
    expect(status.models.map((m) => m.state)).toEqual(['local', 'local']);
    expect(status.fuser.files.length).toBe(2 + 2 * tiny.config.receiver.numLayers);

    const before = server.count('/official/');
    const again: ProgressEvent[] = [];
    const second = await c2c(options(url, (e) => again.push(e)));
    expect(server.count('/official/') - before).toBe(0);
    expect(second.tokenIds).toEqual(c.c2c.output_ids);
    const cachedFuser = again.filter((e) => e.model === 'fuser' && e.phase === 'download');
    expect(cachedFuser.length).toBeGreaterThan(0);
    expect(cachedFuser.every((e) => e.cached === true)).toBe(true);

    const cleared = await clearPairCache(options(url));
    expect(cleared).toEqual({ modelFiles: 0, fuserFiles: status.fuser.files.length });
    expect(await isPairCached(options(url))).toBe(false);
  });

  it('takes the sharer depth from the sharer model in the same host (a layer map that does not reach its last layer)', async () => {
    const r = await c2c(options(`${server.url}shifted/`));
    expect(r.device.fuserFormat).toBe('official');
    expect(r.tokenIds.length).toBeGreaterThan(0);
  });

  it('split across hosts (as in the workers topology), an inferred sharer depth that does not match is refused with the fix named',
    async () => {
    const sharerHost = new ModelHost(nodePlatform());
    const receiverHost = new ModelHost(nodePlatform());
    const init = { device: 'cpu' as const, allowRemoteModels: false, shareDevice: false, topology: 'node' as const, cache: false };
    await Promise.all([sharerHost.init(init), receiverHost.init(init)]);
    try {
      const opts = options(`${server.url}shifted/`);
      const err = await loadPair({ sharer: sharerHost, receiver: receiverHost }, opts, fuserRequest(opts, (u) => u)).catch(
        (e: unknown) => e);
      expect(err).toBeInstanceOf(ShapeMismatchError);
      expect((err as Error).message).toMatch(/pass fuser: \{ url, sharerNumLayers: 3 \}/);
      // With the depth given, the same split loads.
      const fixed = { ...opts, fuser: { url: `${server.url}shifted/`, sharerNumLayers: 3 } };
      const ok = await loadPair({ sharer: sharerHost, receiver: receiverHost }, fixed, fuserRequest(fixed, (u) => u));
      expect(ok.fuser).toMatchObject({ format: 'official', sharerLayersFrom: 'option' });
    } finally {
      await Promise.all([sharerHost.dispose(), receiverHost.dispose()]);
    }
  });
});
