/**
 * Browser: `isPairCached` / `pairCacheStatus` / `clearPairCache` over the Cache API store the workers cache
 * models (transformers.js) and fuser files in. transformers.js is imported only when one is called, so the
 * main-thread bundle does not carry it otherwise.
 */
import { webFuserCache } from '../fuser-source/caches';
import type { EngineOptions } from '../types';
import { clearPair, pairCacheStatus, type PairCacheDeps, type PairCacheStatus } from './pair-cache';

async function deps(): Promise<PairCacheDeps> {
  const { ModelRegistry, env } = await import('@huggingface/transformers');
  return {
    fuserLocation: (url) => ({ url: new URL(url, globalThis.location?.href).href, remote: true }),
    fuserCache: () => webFuserCache(env),
    modelCached: (id, dtype) => ModelRegistry.is_cached(id, { dtype: dtype as never }),
    clearModel: async (id, dtype) => (await ModelRegistry.clear_cache(id, { dtype: dtype as never })).filesDeleted,
  };
}

/** Per model and fuser file: cached, missing or local. */
export async function getPairCacheStatus(opts: EngineOptions): Promise<PairCacheStatus> {
  return pairCacheStatus(opts, await deps());
}

/** True when creating an engine for `opts` needs no network (models and fuser cached or local). */
export async function isPairCached(opts: EngineOptions): Promise<boolean> {
  return (await getPairCacheStatus(opts)).cached;
}

/** Removes the pair's cached model and fuser files; the next load downloads them again. */
export async function clearPairCache(opts: EngineOptions): Promise<{ modelFiles: number; fuserFiles: number }> {
  return clearPair(opts, await deps());
}
