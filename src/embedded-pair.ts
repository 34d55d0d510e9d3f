/**
 * Node-only: the tiny pair shipped in the package (`models/c2c-tiny`: receiver, sharer, fuser, pair.json),
 * located from this module's own place in the package (src/ or dist-lib/, both one level below its root), never
 * from the cwd, so `npx c2c-web serve` and `createNodeC2CEngine(embeddedPair())` work right after an install.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelLoadError } from './errors';
import type { EngineOptions } from './types';

const EMBEDDED_PAIR = 'c2c-tiny';

export function embeddedPairDir(): string {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'models', EMBEDDED_PAIR);
  if (!existsSync(join(dir, 'pair.json'))) {
    const why = `no pair.json in ${dir} (a broken install or a trimmed package)`;
    throw new ModelLoadError(`the embedded pair is missing: ${why}`, { field: 'embeddedPair' });
  }
  return dir;
}

/** EngineOptions for the shipped tiny pair (named 'c2c-tiny', its OpenAI-shaped model id). */
export function embeddedPair(): EngineOptions {
  const dir = embeddedPairDir();
  const pair = JSON.parse(readFileSync(join(dir, 'pair.json'), 'utf8')) as { receiver: string; sharer: string; fuser: string };
  const models = dirname(dir);
  return {
    name: EMBEDDED_PAIR,
    receiver: { id: `${EMBEDDED_PAIR}/${pair.receiver}`, localPath: models },
    sharer: { id: `${EMBEDDED_PAIR}/${pair.sharer}`, localPath: models },
    fuser: join(dir, pair.fuser),
  };
}
