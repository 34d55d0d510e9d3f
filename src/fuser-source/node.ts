/**
 * Node: where a fuser location points (an http(s) URL, a file: URL or a directory) and the reader for it;
 * URLs are cached on disk under transformers.js's `env.cacheDir` (or its custom cache).
 */
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import type { FuserFileCache } from '../fuser/format/file-cache';
import type { FileProgress, FuserFileReader } from '../fuser/format/files';
import { httpFileReader } from '../fuser/format/http-reader';
import { nodeFileCache } from '../fuser/format/node-cache';
import { directoryFileReader } from '../fuser/format/node-io';
import { webFuserCache, type CacheEnv } from './caches';

export const isHttpUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/** An http(s) URL stays as it is; a file: URL or a path becomes an absolute directory. */
export function resolveNodeLocation(location: string): string {
  if (isHttpUrl(location)) return location;
  if (/^file:/i.test(location)) return fileURLToPath(location);
  return resolve(location);
}

export function nodeFuserCache(env: CacheEnv): FuserFileCache | undefined {
  if (env.useCustomCache && env.customCache) return webFuserCache(env);
  return env.cacheDir ? nodeFileCache(env.cacheDir) : undefined;
}

export function nodeFuserReader(
  location: string,
  o: { cache?: FuserFileCache; signal?: AbortSignal; onProgress?: (p: FileProgress) => void; fetch?: typeof fetch } = {},
): FuserFileReader {
  const at = resolveNodeLocation(location);
  return isHttpUrl(at) ? httpFileReader(at, o) : directoryFileReader(at, { onProgress: o.onProgress });
}
