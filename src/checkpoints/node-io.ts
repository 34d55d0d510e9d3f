/**
 * Node-only: read an official C2C checkpoint folder from disk (the browser passes fetched files or a URL
 * reader to `loadOfficialCheckpoint` instead).
 */
import type { FuserWeights } from '../types';
import { directoryFileReader } from '../fuser/format/node-io';
import { loadOfficialCheckpoint, loadOfficialCheckpointWithInfo, type CheckpointReader, type LoadOfficialOptions,
  type OfficialCheckpointInfo } from './official';

/** Reads files under `dir` (paths may not climb out of it): the shared directory reader. */
export function directoryCheckpointReader(dir: string): CheckpointReader {
  return directoryFileReader(dir);
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
