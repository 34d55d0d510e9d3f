/**
 * `ensureStandins(options)`: generates (or reuses) the stand-in set for the paper's two Qwen3-0.6B pairs
 * under `<out>/<variant>/`, laid out like the Hub so transformers.js resolves the real ids offline
 * (`env.localModelPath = <variant dir>`):
 *   onnx-community/Qwen3-0.6B-ONNX, onnx-community/Qwen2.5-0.5B-Instruct, onnx-community/Llama-3.2-1B-Instruct
 *   nics-efc/C2C_Fuser/qwen3_0.6b+qwen2.5_0.5b_Fuser, nics-efc/C2C_Fuser/qwen3_0.6b+llam3.2_1b_Fuser
 *   converted/<fuser folder>.<dtype>   (fuser.json + fuser.safetensors, via the project's converter)
 * Each folder has a standin.json recording the options that decide its bytes; a folder whose record matches
 * is kept, anything absent or stale is regenerated. `<variant>/standins.json` reports sizes and timings.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertOfficialCheckpoint } from '../cli/convert';
import { InvalidInputError } from '../errors';
import type { FuserDims } from '../fuser/shapes';
import type { FuserDType } from '../types';
import { findPreset, type PairPreset } from '../presets';
import { STANDIN_MODELS, reduceArch, type StandinModelKey } from './families';
import { FLAVOURS, type Flavour } from './flavours';
import { writeFuserRelease } from './fuser-release';
import { generatorFingerprint } from './fingerprint';
import { withFolderLock } from './lock';
import { GENERATOR_VERSION, MANIFEST, mb, missingFlavours, readManifest, writeModelFolder, type ModelFolderOptions } from './model-folder';

export const STANDIN_PAIRS = {
  'qwen3-0.6b+qwen2.5-0.5b': { receiver: 'qwen3-0.6b', sharer: 'qwen2.5-0.5b-instruct' },
  'qwen3-0.6b+llama3.2-1b': { receiver: 'qwen3-0.6b', sharer: 'llama3.2-1b-instruct' },
} as const satisfies Record<string, { receiver: StandinModelKey; sharer: StandinModelKey }>;
export type StandinPair = keyof typeof STANDIN_PAIRS;

export const DEFAULT_SEED = 2510_03215;
export const DEFAULT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../.cache/standins');

export interface StandinOptions {
  /** Root folder; the set goes to `<out>/<variant>` (default `.cache/standins` in the repo). */
  out?: string;
  /** Depth of every model and number of projectors (default: the real depths). */
  layers?: number;
  /** Sharer depth when `layers` is set (default `layers`: the terminal map is then the identity). */
  sharerLayers?: number;
  /** Narrower model bodies (families.ts ReduceOptions); KV widths, vocab and fuser widths stay real. */
  hidden?: number;
  seed?: number;
  pairs?: StandinPair[];
  flavours?: Flavour[];
  /** Whether to write the official-layout fusers (default true). */
  fusers?: boolean;
  /** Project-format conversions of each fuser (default float16 and int8). */
  conversions?: FuserDType[];
  /** Declare `num_logits_to_keep` in the decoders (default false: see docs/standins.md). */
  numLogitsToKeep?: boolean;
  /** Weight bytes from which a model file uses external data (default 2 GB). */
  externalDataThreshold?: number;
  chunkBytes?: number;
  paddingSide?: 'left' | 'right';
  log?: (line: string) => void;
}

export interface PartReport {
  path: string;
  bytes: number;
  seconds: number;
  generated: boolean;
}

export interface StandinPaths {
  /** The variant folder: pass it as transformers.js `env.localModelPath`. */
  root: string;
  variant: string;
  models: Partial<Record<StandinModelKey, string>>;
  fusers: Partial<Record<StandinPair, string>>;
  converted: Partial<Record<StandinPair, Partial<Record<FuserDType, string>>>>;
  parts: PartReport[];
  seconds: number;
}

export function variantName(o: StandinOptions): string {
  const parts = [o.layers === undefined && o.hidden === undefined ? 'full' : `L${o.layers ?? 'real'}${o.hidden ? `-H${o.hidden}` : ''}`];
  if (o.sharerLayers !== undefined) parts.push(`S${o.sharerLayers}`);
  if (o.seed !== undefined && o.seed !== DEFAULT_SEED) parts.push(`seed${o.seed}`);
  if (o.numLogitsToKeep) parts.push('keep');
  if (o.externalDataThreshold !== undefined) parts.push(`ext${o.externalDataThreshold}`);
  if (o.chunkBytes !== undefined) parts.push(`chunk${o.chunkBytes}`);
  if (o.paddingSide) parts.push(`pad-${o.paddingSide}`);
  return parts.join('-');
}

function pairPreset(pair: StandinPair): PairPreset {
  const p = findPreset(pair);
  if (!p || p.fuser.kind !== 'official') throw new InvalidInputError(`unknown pair ${pair}`, { field: 'pairs', actual: pair });
  return p;
}

const dirBytes = (files: { bytes: number }[]) => files.reduce((n, f) => n + f.bytes, 0);

/** Bytes of every file under `dir`. */
export function folderBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? folderBytes(p) : statSync(p).size;
  }
  return n;
}

/** Throws InvalidInputError for any option ensureStandins cannot honour (before anything is written). */
export function checkStandinOptions(o: StandinOptions): void {
  const bad = (field: string, msg: string, actual: unknown): never => {
    throw new InvalidInputError(`${field} ${msg}, got ${JSON.stringify(actual)}`, { field, actual });
  };
  for (const k of ['layers', 'sharerLayers', 'hidden', 'seed', 'externalDataThreshold', 'chunkBytes'] as const) {
    const v = o[k];
    const min = k === 'externalDataThreshold' || k === 'seed' ? 0 : 1;
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= min)) bad(k, `must be an integer ≥ ${min}`, v);
  }
  if (o.sharerLayers !== undefined && o.layers === undefined) bad('sharerLayers', 'needs layers', o.sharerLayers);
  for (const p of o.pairs ?? []) if (!(p in STANDIN_PAIRS)) bad('pairs', `must list ${Object.keys(STANDIN_PAIRS).join(' / ')}`, p);
  for (const f of o.flavours ?? []) if (!FLAVOURS.includes(f)) bad('flavours', `must list ${FLAVOURS.join(' / ')}`, f);
  for (const d of o.conversions ?? []) if (!CONVERSIONS.includes(d)) bad('conversions', `must list ${CONVERSIONS.join(' / ')}`, d);
  if (o.paddingSide !== undefined && o.paddingSide !== 'left' && o.paddingSide !== 'right') bad('paddingSide',
    'must be left or right', o.paddingSide);
}

const CONVERSIONS: readonly FuserDType[] = ['float32', 'float16', 'bfloat16', 'int8'];

/** Qwen2.5 and Qwen3 share one byte-level BPE vocabulary (only special tokens differ): no alignment between them. */
const vocabulary = (t: string) => (t === 'llama3' ? 'llama3' : 'qwen');

export async function ensureStandins(o: StandinOptions = {}): Promise<StandinPaths> {
  checkStandinOptions(o);
  const root = join(resolve(o.out ?? DEFAULT_ROOT), variantName(o));
  mkdirSync(root, { recursive: true });
  return withFolderLock(root, () => generate(o, root));
}

async function generate(o: StandinOptions, root: string): Promise<StandinPaths> {
  const t0 = performance.now();
  const log = o.log ?? (() => {});
  const pairs = o.pairs ?? (Object.keys(STANDIN_PAIRS) as StandinPair[]);
  const flavours = o.flavours ?? [...FLAVOURS];
  const seed = o.seed ?? DEFAULT_SEED;
  const variant = variantName(o);
  const paths: StandinPaths = { root, variant, models: {}, fusers: {}, converted: {}, parts: [], seconds: 0 };
  log(`stand-ins ${variant} → ${root}`);

  const archOf = (key: StandinModelKey, role: 'receiver' | 'sharer') =>
    reduceArch(STANDIN_MODELS[key].arch, { layers: role === 'sharer' ? (o.sharerLayers ?? o.layers) : o.layers, hidden: o.hidden });
  const roles = new Map<StandinModelKey, 'receiver' | 'sharer'>();
  for (const p of pairs) {
    roles.set(STANDIN_PAIRS[p].receiver, 'receiver');
    roles.set(STANDIN_PAIRS[p].sharer, 'sharer');
  }
  for (const [key, role] of roles) {
    const spec = STANDIN_MODELS[key];
    const dir = join(root, spec.hubId);
    const mo: ModelFolderOptions = {
      spec, arch: archOf(key, role), seed, numLogitsToKeep: o.numLogitsToKeep ?? false,
      externalDataThreshold: o.externalDataThreshold, chunkBytes: o.chunkBytes, paddingSide: o.paddingSide,
    };
    const missing = missingFlavours(dir, mo, flavours);
    const t = performance.now();
    const m = missing.length ? writeModelFolder(dir, mo, missing, log) : readManifest<ReturnType<typeof writeModelFolder>>(dir)!;
    if (!m) throw new Error(`${dir}: manifest vanished`);
    paths.models[key] = dir;
    paths.parts.push({ path: spec.hubId, bytes: folderBytes(dir), seconds: (performance.now() - t) / 1000, generated: missing.length > 0 });
  }

  if (o.fusers ?? true) {
    for (const pair of pairs) {
      const preset = pairPreset(pair);
      const r = archOf(STANDIN_PAIRS[pair].receiver, 'receiver');
      const s = archOf(STANDIN_PAIRS[pair].sharer, 'sharer');
      const dims: FuserDims = {
        receiver: { numLayers: r.numLayers, kvHeads: r.kvHeads, headDim: r.headDim },
        sharer: { numLayers: s.numLayers, kvHeads: s.kvHeads, headDim: s.headDim },
        hiddenDim: preset.fuserHidden, intermediateDim: preset.fuserIntermediate, numMlpLayers: preset.fuserMlpLayers,
      };
      const folder = preset.fuser.kind === 'official' ? preset.fuser.folder : pair;
      const release = {
        baseModel: STANDIN_MODELS[STANDIN_PAIRS[pair].receiver].sourceId,
        teacherModel: STANDIN_MODELS[STANDIN_PAIRS[pair].sharer].sourceId,
        dims,
        // Cross-tokenizer pairs align with the paper's `longest`; same-tokenizer recipes say "first" with alignment
        // off (c2c-reference §3).
        alignment: vocabulary(STANDIN_MODELS[STANDIN_PAIRS[pair].sharer].tokenizer) !== vocabulary(
          STANDIN_MODELS[STANDIN_PAIRS[pair].receiver].tokenizer)
          ? { enabled: true, strategy: 'longest' as const }
          : { enabled: false, strategy: 'first' as const },
        seed,
      };
      const dir = join(root, 'nics-efc', 'C2C_Fuser', folder);
      const key = { generatorVersion: GENERATOR_VERSION, generatorSource: generatorFingerprint(), ...release };
      const fuserPart = await ensureFolder(dir, key, log, `${folder}`,
        () => writeFuserRelease(dir, release, folder, (i, n) => i === n && log(`  ${folder}: ${n} projectors`)));
      paths.fusers[pair] = dir;
      paths.parts.push({ path: `nics-efc/C2C_Fuser/${folder}`, ...fuserPart });
      for (const dtype of o.conversions ?? (['float16', 'int8'] as FuserDType[])) {
        const out = join(root, 'converted', `${folder}.${dtype}`);
        const part = await ensureFolder(out, { source: key, dtype }, log, `${folder} → ${dtype}`, async () => {
          const summary = await convertOfficialCheckpoint(dir, out, { dtype, sharerNumLayers: dims.sharer.numLayers });
          return summary.files.map((name) => ({ name, bytes: statSync(join(out, name)).size }));
        });
        (paths.converted[pair] ??= {})[dtype] = out;
        paths.parts.push({ path: `converted/${folder}.${dtype}`, ...part });
      }
    }
  }
  paths.seconds = (performance.now() - t0) / 1000;
  writeFileSync(join(root, 'standins.json'), `${JSON.stringify({ generatorVersion: GENERATOR_VERSION, variant, options: { ...o, log: undefined }, seed, parts: paths.parts, seconds: paths.seconds }, null, 2)}\n`);
  log(`stand-ins ${variant}: ${mb(paths.parts.reduce((n, p) => n + p.bytes, 0))} in ${paths.seconds.toFixed(1)} s`);
  return paths;
}

interface FolderRecord {
  key: unknown;
  files: { name: string; bytes: number }[];
}

function folderCurrent(dir: string, key: unknown): FolderRecord | null {
  const m = readManifest<FolderRecord>(dir);
  return m && JSON.stringify(m.key) === JSON.stringify(key) && m.files.every((f) => existsSync(join(dir, f.name))) ? m : null;
}

async function ensureFolder(
  dir: string,
  key: unknown,
  log: (s: string) => void,
  what: string,
  write: () => Promise<{ name: string; bytes: number }[]> | { name: string; bytes: number }[],
): Promise<Omit<PartReport, 'path'>> {
  const current = folderCurrent(dir, key);
  if (current) return { bytes: dirBytes(current.files), seconds: 0, generated: false };
  const t = performance.now();
  rmSync(dir, { recursive: true, force: true });
  const files = await write();
  writeFileSync(join(dir, MANIFEST), `${JSON.stringify({ key, files }, null, 2)}\n`);
  const seconds = (performance.now() - t) / 1000;
  log(`  ${what}: ${mb(dirBytes(files))} in ${seconds.toFixed(1)} s`);
  return { bytes: dirBytes(files), seconds, generated: true };
}
