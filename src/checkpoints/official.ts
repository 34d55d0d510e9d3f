/**
 * Loads a released C2C fuser folder (official `rosetta` layout) into `FuserWeights`:
 *   config.json                  → receiver/sharer model names and token-alignment settings
 *   final/projector_config.json  → the layer map, read as stored (never recomputed)
 *   final/projector_{i}.json     → C2CProjector dims (`init_args`)
 *   final/projector_{i}.pt       → weights, through the restricted torch reader, strict key/shape check
 * Works on in-memory files (browser fetch, tests) or any async reader (Node folder, URLs).
 */
import { AbortError, CheckpointFormatError, throwIfAborted } from '../errors';
import type { FuserConfig, FuserDType, FuserWeights, LayerProjector } from '../types';
import { MIN_NUM_MLP_LAYERS } from '../fuser/shapes';
import { checkProjectorKeys, toLayerProjector, type ProjectorDims } from './projector-keys';
import { readTorchStateDict, type TorchReadOptions } from './torch-archive';
import { memoryFileReader } from '../fuser/format/files';

/** Reads a file by its path relative to the checkpoint folder ('/'-separated); rejects if absent. */
export interface CheckpointReader {
  read(path: string): Promise<Uint8Array>;
}
export type CheckpointSource = Record<string, Uint8Array> | CheckpointReader;

export interface OfficialCheckpointInfo {
  baseModel?: string;
  teacherModel?: string;
  /** projector file index used for each receiver layer. */
  projectorIndex: number[];
  storedDtype: FuserDType;
}

export interface LoadOfficialOptions {
  /** Sharer depth; default max(layer map) + 1 (exact for terminal maps, whose last layer maps to S-1). */
  sharerNumLayers?: number;
  /** Folder holding the projector files, relative to the checkpoint root (default 'final'). */
  finalDir?: string;
  torch?: TorchReadOptions;
  onProgress?: (done: number, total: number, file: string) => void;
  /** Checked before every file: an aborted load throws AbortError between projectors. */
  signal?: AbortSignal;
  /**
   * Called once the layer map and every projector_{i}.json are read, before any .pt file is: may throw (e.g.
   * MemoryBudgetError) to refuse the download. `projectorFiles`: how many distinct .pt files will be read.
   */
  beforeWeights?: (dims: ProjectorDims, receiverLayers: number, projectorFiles: number) => void;
}

const STRATEGIES = new Set(['first', 'longest']);
const DTYPES: Record<string, FuserDType> = { float32: 'float32', float16: 'float16', bfloat16: 'bfloat16' };

export async function loadOfficialCheckpoint(source: CheckpointSource, opts: LoadOfficialOptions = {}): Promise<FuserWeights> {
  return (await loadOfficialCheckpointWithInfo(source, opts)).weights;
}

export async function loadOfficialCheckpointWithInfo(
  source: CheckpointSource,
  opts: LoadOfficialOptions = {},
): Promise<{ weights: FuserWeights; info: OfficialCheckpointInfo }> {
  const read = readerOf(source);
  const dir = (opts.finalDir ?? 'final').replace(/\/+$/, '');
  const at = (name: string) => (dir ? `${dir}/${name}` : name);

  const recipe = await readJson(read, 'config.json');
  const model = obj(recipe.model, 'config.json', 'model');
  const alignment = parseAlignment(model);

  const mapFile = at('projector_config.json');
  const { layerMap, projectorIndex } = parseLayerMap(await readJson(read, mapFile), mapFile);

  // Every projector's init_args first (small files): dims are checked, and a budget can refuse, before any weights.
  const unique = [...new Set(projectorIndex)];
  const dimsOf = new Map<number, ProjectorDims>();
  let dims: ProjectorDims | undefined;
  let storedDtype: FuserDType | undefined;
  for (const idx of unique) {
    throwIfAborted(opts.signal);
    const jsonName = at(`projector_${idx}.json`);
    const { dims: d, dtype } = parseProjectorJson(await readJson(read, jsonName), jsonName);
    if (dims && !sameDims(dims, d)) {
      throw new CheckpointFormatError(`${jsonName}: init_args differ from the first projector's (${JSON.stringify(d)} vs ${JSON.stringify(dims)})`, { field: jsonName });
    }
    dims ??= d;
    storedDtype ??= dtype;
    dimsOf.set(idx, d);
  }
  if (dims) opts.beforeWeights?.(dims, layerMap.length, unique.length);

  // Then the weights, one file at a time: its bytes are dropped once its tensors are widened.
  const layers: LayerProjector[] = [];
  const loaded = new Map<number, LayerProjector>();
  for (let t = 0; t < layerMap.length; t++) {
    throwIfAborted(opts.signal);
    const idx = projectorIndex[t];
    const ptName = at(`projector_${idx}.pt`);
    let layer = loaded.get(idx);
    if (!layer) {
      const d = dimsOf.get(idx)!;
      const tensors = readTorchStateDict(await readFile(read, ptName), ptName, opts.torch);
      checkProjectorKeys(tensors, d, ptName);
      layer = toLayerProjector(tensors, d);
      loaded.set(idx, layer);
    }
    layers.push(layer);
    opts.onProgress?.(t + 1, layerMap.length, ptName);
  }
  if (!dims) throw new CheckpointFormatError(`${mapFile}: the layer map is empty`, { field: mapFile });

  const maxSource = Math.max(...layerMap);
  const sharerLayers = opts.sharerNumLayers ?? maxSource + 1;
  if (!Number.isInteger(sharerLayers) || sharerLayers <= maxSource) {
    throw new CheckpointFormatError(`sharerNumLayers ${sharerLayers} is too small for the layer map (max sharer layer ${maxSource})`,
      { field: 'sharerNumLayers' });
  }
  const config: FuserConfig = {
    receiver: { numLayers: layerMap.length, kvHeads: dims.targetHeads, headDim: dims.targetDim },
    sharer: { numLayers: sharerLayers, kvHeads: dims.sourceHeads, headDim: dims.sourceDim },
    hiddenDim: dims.hiddenDim,
    intermediateDim: dims.intermediateDim,
    numMlpLayers: dims.numLayers,
    rmsNormEps: 1e-6, // nn.RMSNorm(eps=1e-6) in the official FFN block
    scalarTemperature: 1.0, // fixed in the official C2CProjector
    dtype: storedDtype ?? 'bfloat16',
    layerMap,
    alignment,
  };
  const info: OfficialCheckpointInfo = {
    baseModel: typeof model.base_model === 'string' ? model.base_model : undefined,
    teacherModel: typeof model.teacher_model === 'string' ? model.teacher_model : undefined,
    projectorIndex,
    storedDtype: config.dtype,
  };
  return { weights: { config, layers }, info };
}

/** `{"0": {"1": {"<target>": [[<source>, <idx>], ...]}}}` → per receiver layer: sharer layer and projector index. */
export function parseLayerMap(json: Record<string, unknown>, file: string): { layerMap: number[]; projectorIndex: number[] } {
  const targets = Object.keys(json);
  if (targets.length !== 1 || targets[0] !== '0') fail(file, 'top level must hold only target model "0"', '0');
  const sources = obj(json['0'], file, '0');
  const sourceKeys = Object.keys(sources);
  if (sourceKeys.length !== 1 || sourceKeys[0] !== '1') fail(file,
    `only one sharer (source model "1") is supported, found ${JSON.stringify(sourceKeys)}`, '0');
  const layers = obj(sources['1'], file, '0.1');
  const keys = Object.keys(layers);
  const layerMap: number[] = new Array(keys.length);
  const projectorIndex: number[] = new Array(keys.length);
  for (const k of keys) {
    const t = Number(k);
    if (String(t) !== k || t >= keys.length) fail(file, `receiver layers must be exactly 0..${keys.length - 1}, found '${k}'`, `0.1.${k}`);
    const pairs = layers[k];
    if (!Array.isArray(pairs) || pairs.length === 0) fail(file, `layer ${k} has no [source_layer, projector_idx] pair`, `0.1.${k}`);
    // Several sources for one layer: the official wrapper uses only the first.
    const first = (pairs as unknown[])[0];
    if (!Array.isArray(first) || first.length !== 2 || !first.every((v) => Number.isInteger(v) && v >= 0)) {
      fail(file, `layer ${k}: expected [source_layer, projector_idx], got ${JSON.stringify(first)}`, `0.1.${k}`);
    }
    [layerMap[t], projectorIndex[t]] = first as number[];
  }
  return { layerMap, projectorIndex };
}

function parseProjectorJson(json: Record<string, unknown>, file: string): { dims: ProjectorDims; dtype?: FuserDType } {
  if (json.class !== 'C2CProjector') fail(file, `class is ${JSON.stringify(json.class)}, only "C2CProjector" is supported`, 'class');
  const a = obj(json.init_args, file, 'init_args');
  const int = (k: string, min: number): number => {
    const v = a[k];
    if (!Number.isInteger(v) || (v as number) < min) fail(file,
      `init_args.${k} must be an integer >= ${min}, got ${JSON.stringify(v)}`, `init_args.${k}`);
    return v as number;
  };
  const dims: ProjectorDims = {
    sourceDim: int('source_dim', 1),
    targetDim: int('target_dim', 1),
    sourceHeads: int('source_num_heads', 1),
    targetHeads: int('target_num_heads', 1),
    hiddenDim: int('hidden_dim', 1),
    intermediateDim: int('intermediate_dim', 1),
    numLayers: int('num_layers', MIN_NUM_MLP_LAYERS),
  };
  // dtype is encoded by the registry as {"__type__": "torch.dtype", "value": "bfloat16"}.
  const raw = a.dtype as { __type__?: unknown; value?: unknown } | undefined;
  let dtype: FuserDType | undefined;
  if (raw !== undefined && raw !== null) {
    const name = typeof raw === 'object' ? raw.value : raw;
    dtype = DTYPES[String(name).replace(/^torch\./, '')];
    if (!dtype) fail(file, `init_args.dtype ${JSON.stringify(raw)} is not float32/float16/bfloat16`, 'init_args.dtype');
  }
  return { dims, dtype };
}

function parseAlignment(model: Record<string, unknown>): FuserConfig['alignment'] {
  const enabled = model.is_do_alignment ?? false;
  if (typeof enabled !== 'boolean') fail('config.json', `model.is_do_alignment must be a boolean, got ${JSON.stringify(enabled)}`,
    'model.is_do_alignment');
  const s = model.alignment_strategy;
  if (enabled && (typeof s !== 'string' || !STRATEGIES.has(s))) {
    fail('config.json', `model.alignment_strategy must be "first" or "longest" when alignment is on, got ${JSON.stringify(s)}`,
      'model.alignment_strategy');
  }
  // Off: the strategy is never used; keep a valid value (the paper's default) when the recipe has another.
  const strategy = typeof s === 'string' && STRATEGIES.has(s) ? (s as 'first' | 'longest') : 'longest';
  return { enabled: enabled as boolean, strategy };
}

function readerOf(source: CheckpointSource): CheckpointReader {
  if (typeof (source as CheckpointReader).read === 'function') return source as CheckpointReader;
  return memoryFileReader(source as Record<string, Uint8Array>);
}

async function readFile(read: CheckpointReader, path: string): Promise<Uint8Array> {
  try {
    return await read.read(path);
  } catch (e) {
    if (e instanceof CheckpointFormatError || e instanceof AbortError) throw e;
    throw new CheckpointFormatError(`cannot read '${path}': ${(e as Error).message}`, { field: path }, { cause: e });
  }
}

async function readJson(read: CheckpointReader, path: string): Promise<Record<string, unknown>> {
  const bytes = await readFile(read, path);
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new CheckpointFormatError(`${path}: not valid JSON (${(e as Error).message})`, { field: path }, { cause: e });
  }
  return obj(v, path, '');
}

function obj(v: unknown, file: string, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(file, `${field || 'top level'} must be an object`, field);
  return v as Record<string, unknown>;
}

function sameDims(a: ProjectorDims, b: ProjectorDims): boolean {
  return (Object.keys(a) as (keyof ProjectorDims)[]).every((k) => a[k] === b[k]);
}

function fail(file: string, msg: string, field: string): never {
  throw new CheckpointFormatError(`${file}: ${msg}`, { field: field ? `${file}:${field}` : file });
}
