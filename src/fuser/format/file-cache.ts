/**
 * The local cache fuser files go through, keyed by the file's absolute URL. Browser: the Cache API store
 * transformers.js keeps its models in (`env.cacheKey`, 'transformers-cache'), or transformers.js's
 * `env.customCache`; Node: files under transformers.js's `env.cacheDir` (./node-cache.ts). Every entry records
 * the byte count it was stored with (and the sha256 when known), so a truncated or damaged entry is detected
 * on the next read, deleted and fetched again, never loaded.
 */

export interface CacheEntryMeta {
  /** Bytes the entry was stored with (checked against the body on every read). */
  size: number;
  sha256?: string;
}

export interface FuserFileCache {
  /** Where entries live, for reports ('Cache API transformers-cache', a directory). */
  readonly label: string;
  get(url: string): Promise<{ bytes: Uint8Array; meta: CacheEntryMeta } | undefined>;
  /** Size facts without reading the body into memory. */
  stat(url: string): Promise<{ bytes: number; meta: CacheEntryMeta } | undefined>;
  put(url: string, bytes: Uint8Array, meta: CacheEntryMeta): Promise<void>;
  delete(url: string): Promise<boolean>;
}

/** The part of the Web Cache API (and of transformers.js's `env.customCache` contract) used here. */
export interface ResponseCacheLike {
  match(request: string): Promise<Response | undefined>;
  put(request: string, response: Response): Promise<void>;
  delete?(request: string): Promise<boolean>;
}

const SIZE_HEADER = 'x-c2c-size';
const SHA_HEADER = 'x-c2c-sha256';

function metaOf(res: Response): CacheEntryMeta | undefined {
  // Entries written by transformers.js carry content-length only; ours carry x-c2c-size too.
  const size = Number(res.headers.get(SIZE_HEADER) ?? res.headers.get('content-length') ?? NaN);
  if (!Number.isSafeInteger(size) || size < 0) return undefined;
  return { size, sha256: res.headers.get(SHA_HEADER) ?? undefined };
}

/** A FuserFileCache over a Cache API-like store (`caches.open(name)` or transformers.js's custom cache). */
export function responseCache(open: () => Promise<ResponseCacheLike>, label: string): FuserFileCache {
  let store: Promise<ResponseCacheLike> | undefined;
  const cache = () => (store ??= open());
  const match = async (url: string) => {
    const res = await (await cache()).match(url);
    if (!res) return undefined;
    const meta = metaOf(res);
    // An entry without a size record cannot be checked: treat it as absent (it is replaced on download).
    return meta ? { res, meta } : undefined;
  };
  return {
    label,
    async get(url) {
      const hit = await match(url);
      return hit ? { bytes: new Uint8Array(await hit.res.arrayBuffer()), meta: hit.meta } : undefined;
    },
    async stat(url) {
      const hit = await match(url);
      return hit ? { bytes: (await hit.res.blob()).size, meta: hit.meta } : undefined;
    },
    async put(url, bytes, meta) {
      const headers: Record<string, string> = {
        'content-type': 'application/octet-stream',
        'content-length': String(bytes.length),
        [SIZE_HEADER]: String(meta.size),
      };
      if (meta.sha256) headers[SHA_HEADER] = meta.sha256;
      await (await cache()).put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers }));
    },
    async delete(url) {
      const c = await cache();
      return c.delete ? c.delete(url) : false;
    },
  };
}
