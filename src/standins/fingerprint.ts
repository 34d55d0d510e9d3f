/**
 * A fingerprint of the generator's own source: every stand-in folder records it, so a folder written by an
 * older (or locally modified) generator counts as stale and is regenerated, with no version to bump by hand.
 * Covers src/standins/ (but the modules that only read or serve finished folders) and the shared modules
 * whose output lands in the files.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const SHARED = [
  '../fuser/onnx/protobuf.ts', '../fuser/shapes.ts', '../util/half.ts', '../presets.ts', '../fuser/format/serialise.ts',
  '../fuser/format/validate.ts', '../fuser/format/manifest.ts', '../fuser/quantize.ts', '../cli/convert.ts',
];

/** Modules of src/standins/ that write no bytes of a stand-in: editing them regenerates nothing. */
const READERS_ONLY = new Set(['hub-mirror.ts', 'verify.ts']);

let cached: string | undefined;

export function generatorFingerprint(): string {
  if (cached) return cached;
  const h = createHash('sha256');
  const files = [...readdirSync(HERE).filter((f) => f.endsWith('.ts') && !READERS_ONLY.has(f)).sort(), ...SHARED];
  for (const f of files) {
    h.update(f);
    h.update(readFileSync(join(HERE, f)));
  }
  cached = h.digest('hex').slice(0, 16);
  return cached;
}
