/**
 * Node: the fuser file cache on disk, under transformers.js's `env.cacheDir` (where it caches Hub models), laid
 * out like its FileCache: a Hub file `https://huggingface.co/<repo>/resolve/main/<path>` lives at
 * `<cacheDir>/<repo>/<path>` (other revisions at `<repo>/<revision>/<path>`), any other URL at
 * `<cacheDir>/<host>/<path>`. Each file has a `.c2c-meta.json` beside it recording its size (and sha256 when
 * known); files are written to a temporary name and renamed, so a crash never leaves a half file under the real name.
 */
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import type { CacheEntryMeta, FuserFileCache } from './file-cache';

const HUB_HOSTS = new Set(['huggingface.co', 'hf.co']);
const META = '.c2c-meta.json';

/** The cache-relative path of a URL (segments sanitised; never climbs out of the cache). */
export function cachePathOf(url: string): string {
  const u = new URL(url);
  const segs = u.pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
  let parts: string[];
  const resolveAt = segs.indexOf('resolve');
  if (HUB_HOSTS.has(u.hostname) && resolveAt === 2 && segs.length > 4) {
    const [owner, repo] = segs;
    const revision = segs[3];
    parts = [owner, repo, ...(revision === 'main' ? [] : [revision]), ...segs.slice(4)];
  } else {
    parts = [u.port ? `${u.hostname}_${u.port}` : u.hostname, ...segs];
  }
  return parts.map((s) => (s === '.' || s === '..' ? '_' : s.replace(/[^\w.+\-@=]/g, '_'))).join('/');
}

export function nodeFileCache(dir: string): FuserFileCache {
  const root = resolve(dir);
  const fileOf = (url: string) => {
    const f = resolve(root, cachePathOf(url));
    if (!f.startsWith(root + sep)) throw new Error(`cache path for ${url} leaves ${root}`);
    return f;
  };
  const metaOf = async (file: string): Promise<CacheEntryMeta | undefined> => {
    try {
      const m = JSON.parse(await readFile(file + META, 'utf8')) as CacheEntryMeta;
      return Number.isSafeInteger(m.size) && m.size >= 0 ? m : undefined;
    } catch {
      return undefined;
    }
  };
  const atomicWrite = async (file: string, data: Uint8Array | string) => {
    const tmp = `${file}.tmp.${process.pid}.${Math.random().toString(36).slice(2)}`;
    try {
      await writeFile(tmp, data);
      await rename(tmp, file);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  };
  return {
    label: root,
    async get(url) {
      const file = fileOf(url);
      const meta = await metaOf(file);
      if (!meta) return undefined;
      const buf = await readFile(file).catch(() => undefined);
      return buf ? { bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), meta } : undefined;
    },
    async stat(url) {
      const file = fileOf(url);
      const meta = await metaOf(file);
      const s = meta && (await stat(file).catch(() => undefined));
      return meta && s ? { bytes: s.size, meta } : undefined;
    },
    async put(url, bytes, meta) {
      const file = fileOf(url);
      await mkdir(dirname(file), { recursive: true });
      // The meta goes last: a file without it is never served.
      await unlink(file + META).catch(() => undefined);
      await atomicWrite(file, bytes);
      await atomicWrite(file + META, JSON.stringify({ ...meta, url }));
    },
    async delete(url) {
      const file = fileOf(url);
      const had = await stat(file).then(() => true, () => false);
      await unlink(file + META).catch(() => undefined);
      await unlink(file).catch(() => undefined);
      return had;
    },
  };
}

