/**
 * Which store fuser files are cached in, read from transformers.js's `env` (passed in, so this module does not
 * import transformers.js): its custom cache when `env.useCustomCache`, else in browsers the Cache API store it
 * keeps models in (`env.cacheKey`, 'transformers-cache'); Node uses `env.cacheDir` (./node.ts).
 */
import { responseCache, type FuserFileCache, type ResponseCacheLike } from '../fuser/format/file-cache';

/** The transformers.js `env` fields that decide where files are cached. */
export interface CacheEnv {
  useCustomCache?: boolean;
  customCache?: unknown;
  cacheKey?: string;
  cacheDir?: string | null;
}

/** The custom or Cache API store, or undefined when neither is available (then nothing is cached). */
export function webFuserCache(env: CacheEnv): FuserFileCache | undefined {
  if (env.useCustomCache && env.customCache) {
    const custom = env.customCache as ResponseCacheLike;
    return responseCache(async () => custom, 'transformers.js env.customCache');
  }
  const storage = (globalThis as { caches?: CacheStorage }).caches;
  if (!storage) return undefined;
  const name = env.cacheKey ?? 'transformers-cache';
  return responseCache(() => storage.open(name), `Cache API '${name}'`);
}
