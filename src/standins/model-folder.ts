/**
 * One stand-in model folder in the onnx-community layout transformers.js loads:
 *   config.json, generation_config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
 *   onnx/model.onnx (fp32), onnx/model_fp16.onnx, onnx/model_quantized.onnx (q8), each with
 *   `<file>_data[_n]` external data when its weights reach the threshold, and standin.json (what was
 *   generated, from which options; ensure.ts uses it to skip what is already there).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelArch } from '../presets';
import { buildDecoderGraph } from './decoder-graph';
import { generatorFingerprint } from './fingerprint';
import { FAMILY_TRAITS, type StandinModelSpec } from './families';
import { FLAVOUR_FILE, type Flavour } from './flavours';
import { generationConfig, hfConfig } from './hf-config';
import { writeOnnxModel, type WriteOnnxOptions } from './onnx-file';
import { tokenizerPackage, writeTokenizerFiles } from './tokenizers';

/** The stand-in format version; the source fingerprint (fingerprint.ts) catches every other change. */
export const GENERATOR_VERSION = 1;

export interface ModelFolderOptions {
  spec: StandinModelSpec;
  arch: ModelArch;
  seed: number;
  numLogitsToKeep: boolean;
  externalDataThreshold?: number;
  chunkBytes?: number;
  paddingSide?: 'left' | 'right';
}

export interface FlavourRecord {
  files: { name: string; bytes: number }[];
  externalDataFiles: number;
  weightBytes: number;
  seconds: number;
}

export interface ModelManifest {
  generator: 'c2c-web standins';
  generatorVersion: number;
  standsInFor: string;
  source: string;
  /** Everything that decides the bytes; a folder whose key differs is regenerated. */
  key: Record<string, unknown>;
  tokenizerPackage: string;
  flavours: Partial<Record<Flavour, FlavourRecord>>;
}

export const MANIFEST = 'standin.json';

export function manifestKey(o: ModelFolderOptions): Record<string, unknown> {
  return {
    generatorVersion: GENERATOR_VERSION,
    generatorSource: generatorFingerprint(),
    model: o.spec.key,
    arch: o.arch,
    seed: o.seed,
    numLogitsToKeep: o.numLogitsToKeep,
    externalDataThreshold: o.externalDataThreshold ?? null,
    chunkBytes: o.chunkBytes ?? null,
    paddingSide: o.paddingSide ?? null,
  };
}

export function readManifest<T>(dir: string): T | null {
  const p = join(dir, MANIFEST);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as T;
  } catch {
    return null;
  }
}

const sameKey = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Flavours that are missing (or whose files are gone) for these options; all of them if the key differs. */
export function missingFlavours(dir: string, o: ModelFolderOptions, wanted: readonly Flavour[]): Flavour[] {
  const m = readManifest<ModelManifest>(dir);
  if (!m || !sameKey(m.key, manifestKey(o))) return [...wanted];
  return wanted.filter((f) => !m.flavours[f] || !m.flavours[f]!.files.every((x) => existsSync(join(dir, 'onnx', x.name))));
}

/**
 * Generates `flavours` into `dir` (keeping other flavours of a matching folder), then rewrites the JSON
 * files and the manifest. Returns the manifest.
 */
export function writeModelFolder(dir: string, o: ModelFolderOptions, flavours: readonly Flavour[],
  log: (s: string) => void = () => {}): ModelManifest {
  const previous = readManifest<ModelManifest>(dir);
  const keep = previous && sameKey(previous.key, manifestKey(o)) ? previous.flavours : {};
  if (!previous || !sameKey(previous.key, manifestKey(o))) rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  // The manifest goes first without the flavours being written, so an interrupted run is regenerated.
  const manifest: ModelManifest = {
    generator: 'c2c-web standins',
    generatorVersion: GENERATOR_VERSION,
    standsInFor: o.spec.hubId,
    source: o.spec.sourceId,
    key: manifestKey(o),
    tokenizerPackage: tokenizerPackage(o.spec.tokenizer),
    flavours: Object.fromEntries(Object.entries(keep).filter(([f]) => !flavours.includes(f as Flavour))),
  };
  writeFileSync(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  const writeOpts: WriteOnnxOptions = {
    externalDataThreshold: o.externalDataThreshold,
    chunkBytes: o.chunkBytes,
    model: { producerName: 'c2c-web standins', producerVersion: String(GENERATOR_VERSION),
      docString: `random-weight stand-in for ${o.spec.hubId}` },
  };
  for (const f of flavours) {
    const t0 = performance.now();
    const graph = buildDecoderGraph({
      arch: o.arch, traits: FAMILY_TRAITS[o.spec.family], ropeTheta: o.spec.ropeTheta, ropeScaling: o.spec.ropeScaling,
      rmsNormEps: o.spec.rmsNormEps, flavour: f, seed: o.seed, numLogitsToKeep: o.numLogitsToKeep,
    });
    const w = writeOnnxModel(join(dir, 'onnx', FLAVOUR_FILE[f]), graph, writeOpts);
    const seconds = (performance.now() - t0) / 1000;
    manifest.flavours[f] = { ...w, seconds };
    writeFileSync(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    log(`  ${o.spec.hubId} ${f}: ${w.files.map((x) => `${x.name} ${mb(x.bytes)}`).join(', ')} in ${seconds.toFixed(1)} s`);
  }
  writeTokenizerFiles(o.spec.tokenizer, dir, { paddingSide: o.paddingSide });
  const external = Object.fromEntries(
    Object.entries(manifest.flavours).filter(([, r]) => r!.externalDataFiles > 0).map(
      ([f, r]) => [FLAVOUR_FILE[f as Flavour], r!.externalDataFiles]),
  );
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(hfConfig(o.spec, o.arch, external, 'fp16' in manifest.flavours), null, 2)}\n`);
  writeFileSync(join(dir, 'generation_config.json'), `${JSON.stringify(generationConfig(o.spec), null, 2)}\n`);
  writeFileSync(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

export const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
