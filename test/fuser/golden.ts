/**
 * Loads the golden fuser fixtures of test/fixtures/fuser/<name>/ (written by train/make_golden_fuser.py):
 * the fuser through the public loaders (loadFuserWeights, parseSafetensors) and every case's receiver/sharer
 * caches with the PyTorch-fused expected receiver cache. Shared by the CPU reference and WebGPU kernel tests.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadFuserWeights } from '../../src/fuser/format/validate';
import { parseSafetensors, tensorToFloat32, tensorToNumbers, type SafetensorsFile } from '../../src/fuser/safetensors';
import type { FuserWeights, KVCache, KVTensor } from '../../src/types';
import { copyTensor } from '../../src/kv/ops';

export const GOLDEN_DIR = join(import.meta.dirname, '..', 'fixtures', 'fuser');

export interface GoldenCase {
  seq: number;
  receiver: KVCache;
  sharer: KVCache;
  /** PyTorch output (float64 math, stored float32). */
  expected: KVCache;
}

export interface GoldenFixture {
  name: string;
  json: Record<string, unknown>;
  weights: FuserWeights;
  cases: GoldenCase[];
}

export function listGoldenFixtures(): string[] {
  return readdirSync(GOLDEN_DIR).filter((n) => statSync(join(GOLDEN_DIR, n)).isDirectory()).sort();
}

function kv(file: SafetensorsFile, name: string): KVTensor {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`golden fixture: tensor ${name} missing`);
  if (t.shape.length !== 3) throw new Error(`golden fixture: tensor ${name} has shape [${t.shape}]`);
  const [heads, seq, headDim] = t.shape;
  return { data: tensorToFloat32(t), heads, seq, headDim };
}

function cache(file: SafetensorsFile, prefix: string, layers: number): KVCache {
  return Array.from({ length: layers }, (_, l) => ({ key: kv(file, `${prefix}.${l}.key`), value: kv(file, `${prefix}.${l}.value`) }));
}

export function loadGoldenFixture(name: string): GoldenFixture {
  const dir = join(GOLDEN_DIR, name);
  const json = JSON.parse(readFileSync(join(dir, 'fuser.json'), 'utf8')) as Record<string, unknown>;
  const files: Record<string, Uint8Array> = {};
  for (const f of json.files as string[]) files[f] = new Uint8Array(readFileSync(join(dir, f)));
  const weights = loadFuserWeights(json, files);
  const casesFile = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'cases.safetensors'))), 'cases.safetensors');
  const count = Number(casesFile.metadata.num_cases);
  const { receiver, sharer } = weights.config;
  const cases: GoldenCase[] = [];
  for (let c = 0; c < count; c++) {
    const seqTensor = casesFile.tensors.get(`c${c}.seq`);
    if (!seqTensor) throw new Error(`golden fixture ${name}: c${c}.seq missing`);
    cases.push({
      seq: tensorToNumbers(seqTensor)[0],
      receiver: cache(casesFile, `c${c}.receiver`, receiver.numLayers),
      sharer: cache(casesFile, `c${c}.sharer`, sharer.numLayers),
      expected: cache(casesFile, `c${c}.fused`, receiver.numLayers),
    });
  }
  return { name, json, weights, cases };
}

/** Deep copy of a cache, for checking that a fuser left its inputs untouched. */
export function cloneCache(c: KVCache): KVCache {
  return c.map((l) => ({ key: copyTensor(l.key), value: copyTensor(l.value) }));
}
