/**
 * Whether a pair (both models and every fuser file) is in the local cache, and clearing it. Models go through
 * transformers.js's ModelRegistry (its cache, its file list for the model's dtype); fuser files through the same
 * store the fuser loader caches them in. A model or fuser served from a local folder has nothing to cache ('local').
 * The platform (browser or Node entry) supplies where things live.
 */
import type { FuserFileCache } from '../fuser/format/file-cache';
import { httpFileReader } from '../fuser/format/http-reader';
import { FuserFormatError } from '../errors';
import { cachedFuserFiles } from '../fuser-source';
import type { EngineOptions, FuserFormat, ModelRole } from '../types';

export type CacheState = 'cached' | 'missing' | 'local';

export interface PairCacheStatus {
  /** True when loading the pair needs no network: every model and fuser file is cached or local. */
  cached: boolean;
  models: { role: ModelRole; id: string; state: CacheState }[];
  fuser: { url: string; state: CacheState; format?: FuserFormat; files: { file: string; cached: boolean }[] };
}

export interface PairCacheDeps {
  /** The fuser location resolved; `remote` false for a local directory (Node). */
  fuserLocation(url: string): { url: string; remote: boolean };
  fuserCache(): FuserFileCache | undefined;
  modelCached(id: string, dtype: string): Promise<boolean>;
  clearModel(id: string, dtype: string): Promise<number>;
}

const fuserUrlOf = (opts: EngineOptions) => (typeof opts.fuser === 'string' ? opts.fuser : opts.fuser.url);
const modelDType = (opts: EngineOptions, role: ModelRole) => opts[role].dtype ?? 'fp32';
/** Models come from their local folder unless remote models are allowed (then transformers.js caches them). */
const modelsRemote = (opts: EngineOptions) => opts.allowRemoteModels ?? false;

/** A reader that never touches the network: cache hits only. */
function cacheOnlyReader(url: string, cache: FuserFileCache) {
  const offline = (async () => {
    throw new FuserFormatError('not in the cache (cache-only check)');
  }) as unknown as typeof fetch;
  return httpFileReader(url, { cache, fetch: offline });
}

export async function pairCacheStatus(opts: EngineOptions, deps: PairCacheDeps): Promise<PairCacheStatus> {
  const models = await Promise.all((['sharer', 'receiver'] as const).map(async (role) => {
    const id = opts[role].id;
    const state: CacheState = !modelsRemote(opts) ? 'local' : (await deps.modelCached(id, modelDType(opts, role))) ? 'cached' : 'missing';
    return { role, id, state };
  }));
  const loc = deps.fuserLocation(fuserUrlOf(opts));
  let fuser: PairCacheStatus['fuser'] = { url: loc.url, state: 'local', files: [] };
  if (loc.remote) {
    const cache = deps.fuserCache();
    const listed = cache ? await cachedFuserFiles(cacheOnlyReader(loc.url, cache)) : { files: [{ file: 'fuser.json', cached: false }] };
    fuser = { url: loc.url, state: listed.files.every((f) => f.cached) ? 'cached' : 'missing', format: listed.format, files: listed.files };
  }
  return { cached: models.every((m) => m.state !== 'missing') && fuser.state !== 'missing', models, fuser };
}

/** Deletes the pair's cached model files and fuser files; returns how many of each were deleted. */
export async function clearPair(opts: EngineOptions, deps: PairCacheDeps): Promise<{ modelFiles: number; fuserFiles: number }> {
  let modelFiles = 0;
  if (modelsRemote(opts)) {
    for (const role of ['sharer', 'receiver'] as const) modelFiles += await deps.clearModel(opts[role].id, modelDType(opts, role));
  }
  let fuserFiles = 0;
  const loc = deps.fuserLocation(fuserUrlOf(opts));
  const cache = deps.fuserCache();
  if (loc.remote && cache) {
    const { files } = await cachedFuserFiles(cacheOnlyReader(loc.url, cache));
    const base = loc.url.endsWith('/') ? loc.url : `${loc.url}/`;
    for (const f of files) if (await cache.delete(new URL(f.file, base).href)) fuserFiles++;
  }
  return { modelFiles, fuserFiles };
}
