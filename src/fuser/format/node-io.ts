/**
 * Node-only fuser I/O: load a fuser folder (fuser.json + listed safetensors) from disk, and save one.
 * Kept apart from format.ts so browser bundles never import node:fs.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FuserFormatError } from '../../errors';
import { loadFuserWeights } from './validate';
import { serializeFuser } from './serialise';
import { readManifest } from './manifest';
import type { FuserDType, FuserWeights } from '../../types';

async function readOrFail(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new FuserFormatError(`cannot read ${what} at ${path}: ${(e as Error).message}`, { file: path }, { cause: e });
  }
}

export async function loadFuserFromDirectory(dir: string): Promise<FuserWeights> {
  const text = (await readOrFail(join(dir, 'fuser.json'), 'fuser.json')).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FuserFormatError(`fuser.json is not valid JSON: ${(e as Error).message}`, { field: 'fuser.json' });
  }
  const files: Record<string, Uint8Array> = {};
  for (const f of readManifest(json).files) {
    const buf = await readOrFail(join(dir, f), `fuser file "${f}"`);
    files[f] = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return loadFuserWeights(json, files);
}

export async function saveFuserToDirectory(
  dir: string,
  weights: FuserWeights,
  opts: { dtype?: FuserDType; metadata?: Record<string, unknown> } = {},
): Promise<void> {
  const { json, files } = serializeFuser(weights, opts);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'fuser.json'), `${JSON.stringify(json, null, 2)}\n`);
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
}
