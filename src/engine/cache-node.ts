/** Node: `isPairCached` / `getPairCacheStatus` / `clearPairCache` over transformers.js's `env.cacheDir` (models and fuser files). */
import { ModelRegistry, env } from '@huggingface/transformers';
import { isHttpUrl, nodeFuserCache, resolveNodeLocation } from '../fuser-source/node';
import type { EngineOptions } from '../types';
import { clearPair, pairCacheStatus, type PairCacheDeps, type PairCacheStatus } from './pair-cache';

const deps = (): PairCacheDeps => ({
  fuserLocation: (url) => {
    const at = resolveNodeLocation(url);
    return { url: at, remote: isHttpUrl(at) };
  },
  fuserCache: () => nodeFuserCache(env),
  modelCached: (id, dtype) => ModelRegistry.is_cached(id, { dtype: dtype as never }),
  clearModel: async (id, dtype) => (await ModelRegistry.clear_cache(id, { dtype: dtype as never })).filesDeleted,
});

export async function getPairCacheStatus(opts: EngineOptions): Promise<PairCacheStatus> {
  return pairCacheStatus(opts, deps());
}

export async function isPairCached(opts: EngineOptions): Promise<boolean> {
  return (await getPairCacheStatus(opts)).cached;
}

export async function clearPairCache(opts: EngineOptions): Promise<{ modelFiles: number; fuserFiles: number }> {
  return clearPair(opts, deps());
}
