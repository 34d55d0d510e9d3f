/**
 * Node-only fuser I/O: a FuserFileReader over a directory (paths may not climb out of it; byte progress per
 * file), loading a c2c-web fuser folder from disk, and saving one. Kept apart so browser bundles never import node:fs.
 */
import { open, writeFile, mkdir, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { FuserFormatError } from '../../errors';
import { addFileHashes, serializeFuser } from './serialise';
import { loadFuserFromReader } from './fetch';
import { checkRelativePath, verifyFile, type FileProgress, type FileReport, type FuserFileReader } from './files';
import type { FuserDType, FuserWeights } from '../../types';

/** Reads in slices this large, so progress moves on big files (and a read can be abandoned between them). */
const SLICE = 8 << 20;

export function directoryFileReader(dir: string, opts: { onProgress?: (p: FileProgress) => void } = {}): FuserFileReader {
  const root = resolve(dir);
  const reports: FileReport[] = [];
  const full = (path: string) => {
    checkRelativePath(path);
    const f = resolve(root, path);
    if (!f.startsWith(root + sep)) throw new FuserFormatError(`path '${path}' leaves the fuser folder`, { file: path });
    return f;
  };
  const readAll = async (path: string): Promise<Uint8Array | null> => {
    let fh;
    try {
      fh = await open(full(path), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new FuserFormatError(`cannot read '${path}' in ${root}: ${(e as Error).message}`, { file: path }, { cause: e });
    }
    try {
      const size = (await fh.stat()).size;
      // One buffer of the file's size, filled in slices (no whole-file copy, progress as it goes).
      const bytes = new Uint8Array(size);
      let loaded = 0;
      opts.onProgress?.({ file: path, loaded, total: size, cached: false });
      while (loaded < size) {
        const { bytesRead } = await fh.read(bytes, loaded, Math.min(SLICE, size - loaded), loaded);
        if (bytesRead === 0) throw new FuserFormatError(`'${path}' shrank while it was read (${loaded} of ${size} bytes)`, { file: path });
        loaded += bytesRead;
        opts.onProgress?.({ file: path, loaded, total: size, cached: false });
      }
      return bytes;
    } finally {
      await fh.close();
    }
  };
  return {
    location: root,
    reports,
    async readOptional(path, accept) {
      const bytes = await readAll(path);
      if (!bytes || (accept && !accept(bytes))) return null;
      reports.push({ file: path, bytes: bytes.length, cached: false, verified: 'none' });
      return bytes;
    },
    async read(path, expect) {
      const bytes = await readAll(path);
      if (!bytes) throw new FuserFormatError(`missing file '${path}' in ${root}`, { file: path });
      const verified = await verifyFile(path, bytes, expect, 'none');
      reports.push({ file: path, bytes: bytes.length, cached: false, verified });
      return bytes;
    },
    async isCached() {
      return false;
    },
  };
}

/** True when `path` is an existing directory. */
export async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

export async function loadFuserFromDirectory(dir: string): Promise<FuserWeights> {
  return loadFuserFromReader(directoryFileReader(dir));
}

export async function saveFuserToDirectory(
  dir: string,
  weights: FuserWeights,
  opts: { dtype?: FuserDType; metadata?: Record<string, unknown> } = {},
): Promise<void> {
  const { json, files } = serializeFuser(weights, opts);
  const withHashes = await addFileHashes(json, files);
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
  // fuser.json last: a folder with fuser.json is complete.
  await writeFile(join(dir, 'fuser.json'), `${JSON.stringify(withHashes, null, 2)}\n`);
}

