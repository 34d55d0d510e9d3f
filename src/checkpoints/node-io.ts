/**
 * Node-only: read an official C2C checkpoint folder from disk (the browser passes fetched files or a URL
 * reader to `loadOfficialCheckpoint` instead).
 */
import { readFile } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import type { FuserWeights } from '../types';
import { CheckpointFormatError } from '../errors';
import { loadOfficialCheckpoint, loadOfficialCheckpointWithInfo, type CheckpointReader, type LoadOfficialOptions, type OfficialCheckpointInfo } from './official';

/** Reads files under `dir`; paths may not climb out of it. */
export function directoryCheckpointReader(dir: string): CheckpointReader {
  const root = resolve(dir);
  return {
    async read(path) {
      const full = resolve(root, path);
      if (full !== root && !full.startsWith(root + sep)) throw new CheckpointFormatError(`path '${path}' leaves the checkpoint folder`, { field: path });
      try {
        const buf = await readFile(full);
        return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new CheckpointFormatError(code === 'ENOENT' ? `missing file '${path}' in ${root}` : `cannot read '${path}': ${(e as Error).message}`, { field: path }, { cause: e });
      }
    },
  };
}

export function loadOfficialCheckpointFromDirectory(dir: string, opts?: LoadOfficialOptions): Promise<FuserWeights> {
  return loadOfficialCheckpoint(directoryCheckpointReader(dir), opts);
}

export function loadOfficialCheckpointFromDirectoryWithInfo(
  dir: string,
  opts?: LoadOfficialOptions,
): Promise<{ weights: FuserWeights; info: OfficialCheckpointInfo }> {
  return loadOfficialCheckpointWithInfo(directoryCheckpointReader(dir), opts);
}
