/**
 * FuserFileReader over HTTP(S): files relative to a base URL, cache-first (an intact cached copy is used
 * without any request), downloads streamed with byte progress into one buffer of the announced size, checked
 * against the manifest's size/sha256 or the server's Content-Length, then stored in the cache. Hand-written
 * because transformers.js keeps its file fetcher internal (and it only resolves Hub model ids, not folder URLs);
 * the cache stores and progress events follow its conventions (see ./file-cache.ts).
 */
import { AbortError, C2CError, FuserFormatError, InvalidInputError, throwIfAborted } from '../../errors';
import type { FuserFileCache } from './file-cache';
import { checkRelativePath, verifyFile, type FileExpectation, type FileProgress, type FileReport, type FuserFileReader } from './files';

export interface HttpReaderOptions {
  fetch?: typeof fetch;
  signal?: AbortSignal;
  cache?: FuserFileCache;
  onProgress?: (p: FileProgress) => void;
}

/** The folder URL with a trailing slash, resolved against the page when relative. */
export function folderUrl(baseUrl: string): string {
  const pageUrl = (globalThis as { location?: { href: string } }).location?.href;
  try {
    return new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`, pageUrl).href;
  } catch {
    throw new InvalidInputError(`fuser URL '${baseUrl}' is not absolute and there is no page to resolve it against`, { field: 'fuser' });
  }
}

const isAbort = (e: unknown) => e instanceof AbortError || (e as Error)?.name === 'AbortError';

export function httpFileReader(baseUrl: string, opts: HttpReaderOptions = {}): FuserFileReader {
  const base = folderUrl(baseUrl);
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const cache = opts.cache;
  const reports: FileReport[] = [];
  const urlOf = (path: string) => {
    checkRelativePath(path);
    return new URL(path, base).href;
  };

  /** An intact cached copy, or undefined (a damaged one is deleted). */
  type Hit = { bytes: Uint8Array; report: FileReport };
  const fromCache = async (path: string, url: string, expect?: FileExpectation): Promise<Hit | 'damaged' | undefined> => {
    const hit = await cache?.get(url).catch(() => undefined);
    if (!hit) return undefined;
    const bad = hit.bytes.length !== hit.meta.size
      || (expect?.size !== undefined && expect.size !== hit.meta.size)
      || (expect?.sha256 !== undefined && hit.meta.sha256 !== undefined && expect.sha256 !== hit.meta.sha256);
    if (bad) {
      await cache!.delete(url).catch(() => false);
      return 'damaged';
    }
    let verified: FileReport['verified'];
    try {
      verified = await verifyFile(path, hit.bytes, expect, 'content-length');
    } catch {
      await cache!.delete(url).catch(() => false);
      return 'damaged';
    }
    opts.onProgress?.({ file: path, loaded: hit.bytes.length, total: hit.bytes.length, cached: true });
    return { bytes: hit.bytes, report: { file: path, bytes: hit.bytes.length, cached: true, verified } };
  };

  const download = async (path: string, url: string, optional: boolean): Promise<{ bytes: Uint8Array; lengthChecked: boolean } | null> => {
    throwIfAborted(opts.signal);
    let res: Response;
    try {
      res = await doFetch(url, { signal: opts.signal });
    } catch (e) {
      if (isAbort(e)) throw new AbortError();
      if (e instanceof C2CError) throw e;
      throw new FuserFormatError(`cannot fetch '${path}' from ${url}: ${(e as Error).message}`, { file: path }, { cause: e });
    }
    if (optional && res.status === 404) {
      await res.body?.cancel().catch(() => undefined);
      return null;
    }
    if (!res.ok) {
      throw new FuserFormatError(`cannot fetch '${path}' (${res.status} ${res.statusText}) from ${url}`,
        { file: path, status: res.status });
    }
    // Content-Length is the wire size: a decoded (gzip) body may be longer, never shorter, than an intact one.
    const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
    const announced = Number(res.headers.get('content-length') ?? NaN);
    const total = Number.isSafeInteger(announced) && announced >= 0 ? announced : 0;
    const bytes = await readBody(res, path, total, opts);
    if (total > 0 && (encoded ? bytes.length < total : bytes.length !== total)) {
      const details = { file: path, expected: total, actual: bytes.length };
      throw new FuserFormatError(`'${path}' arrived truncated: ${bytes.length} of ${total} bytes (${url})`, details);
    }
    return { bytes, lengthChecked: total > 0 && !encoded };
  };

  const fetchAndStore = async (
    path: string,
    expect: FileExpectation | undefined,
    optional: boolean,
    accept?: (b: Uint8Array) => boolean,
  ): Promise<Uint8Array | null> => {
    const url = urlOf(path);
    const cached = await fromCache(path, url, expect);
    if (cached && cached !== 'damaged') {
      reports.push(cached.report);
      return cached.bytes;
    }
    const got = await download(path, url, optional);
    // Not found, or not the file looked for (e.g. a server's index page for every path): absent, and not cached.
    if (!got || (accept && !accept(got.bytes))) return null;
    const verified = await verifyFile(path, got.bytes, expect, got.lengthChecked ? 'content-length' : 'none');
    if (cache) {
      const sha256 = expect?.sha256 ?? undefined;
      // A failed store (quota, read-only disk) costs the next load a download, nothing else.
      await cache.put(url, got.bytes, { size: got.bytes.length, sha256 }).catch(() => undefined);
    }
    reports.push({ file: path, bytes: got.bytes.length, cached: false, verified, ...(cached === 'damaged' ? { refetched: true } : {}) });
    return got.bytes;
  };

  return {
    location: base,
    reports,
    read: async (path, expect) => (await fetchAndStore(path, expect, false))!,
    readOptional: (path, accept) => fetchAndStore(path, undefined, true, accept),
    async isCached(path) {
      if (!cache) return false;
      const s = await cache.stat(urlOf(path)).catch(() => undefined);
      return !!s && s.bytes === s.meta.size;
    },
  };
}

/** Streams a body into one buffer (of the announced size when known), reporting progress per chunk. */
async function readBody(res: Response, path: string, total: number, opts: HttpReaderOptions): Promise<Uint8Array> {
  const report = (loaded: number) => opts.onProgress?.({ file: path, loaded, total: Math.max(total, loaded), cached: false });
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    report(bytes.length);
    return bytes;
  }
  const reader = res.body.getReader();
  let buf = new Uint8Array(total);
  let loaded = 0;
  report(0);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (loaded + value.length > buf.length) {
        // More than announced (a decoded body, or no Content-Length): grow geometrically.
        const grown = new Uint8Array(Math.max(buf.length * 2, loaded + value.length, 1 << 16));
        grown.set(buf.subarray(0, loaded));
        buf = grown;
      }
      buf.set(value, loaded);
      loaded += value.length;
      report(loaded);
    }
  } catch (e) {
    if (isAbort(e) || opts.signal?.aborted) throw new AbortError();
    throw new FuserFormatError(`download of '${path}' failed after ${loaded} bytes: ${(e as Error).message}`, { file: path }, { cause: e });
  }
  return loaded === buf.length ? buf : buf.slice(0, loaded);
}
