/** Loads the golden fuser fixtures (`test/fixtures/fuser/<name>/`) as FuserWeights plus KV cases. */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadFuserFromDirectory } from '../../src/fuser/format/node-io';
import { parseSafetensors, tensorToFloat32, tensorToNumbers } from '../../src/fuser/safetensors';
import type { FuserWeights, KVCache, KVTensor } from '../../src/types';

export const FIXTURE_ROOT = join(import.meta.dirname, '..', 'fixtures', 'fuser');

export interface FixtureCase {
  seq: number;
  receiver: KVCache;
  sharer: KVCache;
  fused: KVCache;
}

export function fixtureNames(): string[] {
  return readdirSync(FIXTURE_ROOT).filter((d) => existsSync(join(FIXTURE_ROOT, d, 'fuser.json')));
}

export async function loadFixture(name: string): Promise<{ weights: FuserWeights; cases: FixtureCase[] }> {
  const dir = join(FIXTURE_ROOT, name);
  const weights = await loadFuserFromDirectory(dir);
  const file = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'cases.safetensors'))), 'cases.safetensors');
  const get = (n: string) => {
    const t = file.tensors.get(n);
    if (!t) throw new Error(`${name}/cases.safetensors lacks ${n}`);
    return t;
  };
  const cfg = weights.config;
  const cases: FixtureCase[] = [];
  for (let c = 0; file.tensors.has(`c${c}.seq`); c++) {
    const seq = tensorToNumbers(get(`c${c}.seq`))[0];
    const cache = (kind: string, layers: number, heads: number, dim: number): KVCache =>
      Array.from({ length: layers }, (_, l) => {
        const t = (p: string): KVTensor => ({ data: tensorToFloat32(get(`c${c}.${kind}.${l}.${p}`)), heads, seq, headDim: dim });
        return { key: t('key'), value: t('value') };
      });
    cases.push({
      seq,
      receiver: cache('receiver', cfg.receiver.numLayers, cfg.receiver.kvHeads, cfg.receiver.headDim),
      sharer: cache('sharer', cfg.sharer.numLayers, cfg.sharer.kvHeads, cfg.sharer.headDim),
      fused: cache('fused', cfg.receiver.numLayers, cfg.receiver.kvHeads, cfg.receiver.headDim),
    });
  }
  return { weights, cases };
}
