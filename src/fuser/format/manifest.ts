/**
 * Validation of fuser.json (docs/fuser-format.md): every field checked, every failure a FuserFormatError
 * whose message and `details.field` name the offending field. Produces the resolved FuserConfig.
 */
import { FuserFormatError } from '../../errors';
import type { FuserConfig, FuserDType, ModelKVDims } from '../../types';
import { terminalLayerMap } from '../layer-map';
import { numMlpLayersProblem } from '../shapes';

/** Version 2: scalar_mlp2 has inner width hidden_dim, as upstream builds it (version 1 used intermediate_dim). */
export const FUSER_FORMAT_VERSION = 2;

export interface FuserManifest {
  config: FuserConfig;
  files: string[];
  /** Optional per-file facts (`integrity` in fuser.json): checked on download and on every cached read. */
  integrity: Record<string, { size?: number; sha256?: string }>;
  metadata: Record<string, unknown>;
}

const DTYPES: readonly FuserDType[] = ['float32', 'float16', 'bfloat16', 'int8'];
/** Generous sanity bounds: real fusers are far below them, garbage above them is refused before allocation. */
const MAX_DIM = 1 << 16;
const MAX_LAYERS = 1024;

type Obj = Record<string, unknown>;

function fail(field: string, msg: string, actual?: unknown): never {
  throw new FuserFormatError(`fuser.json: ${field} ${msg}`, { field, actual });
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function posInt(o: Obj, key: string, path: string, max = MAX_DIM, fallback?: number): number {
  const v = o[key] ?? fallback;
  if (v === undefined) fail(path, 'is missing');
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) fail(path,
    `must be an integer in [1, ${max}], got ${JSON.stringify(v)}`, v);
  return v as number;
}

function posNum(o: Obj, key: string, fallback: number): number {
  const v = o[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(key, `must be a positive number, got ${JSON.stringify(v)}`, v);
  return v as number;
}

function dims(o: Obj, key: 'receiver' | 'sharer'): ModelKVDims {
  const d = o[key];
  if (d === undefined) fail(key, 'is missing');
  if (!isObj(d)) fail(key, 'must be an object with num_layers, num_kv_heads, head_dim', d);
  return {
    numLayers: posInt(d, 'num_layers', `${key}.num_layers`, MAX_LAYERS),
    kvHeads: posInt(d, 'num_kv_heads', `${key}.num_kv_heads`),
    headDim: posInt(d, 'head_dim', `${key}.head_dim`),
  };
}

function layerMap(o: Obj, receiver: ModelKVDims, sharer: ModelKVDims): number[] {
  const m = o.layer_map ?? 'terminal';
  if (m === 'terminal') return terminalLayerMap(receiver.numLayers, sharer.numLayers);
  if (!Array.isArray(m)) fail('layer_map', 'must be "terminal" or an array of sharer layer indices', m);
  if (m.length !== receiver.numLayers) fail('layer_map',
    `must have one entry per receiver layer (${receiver.numLayers}), got ${m.length}`, m.length);
  m.forEach((s, t) => {
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 0 || s >= sharer.numLayers) {
      fail(`layer_map[${t}]`, `must be a sharer layer index in [0, ${sharer.numLayers - 1}], got ${JSON.stringify(s)}`, s);
    }
  });
  return (m as number[]).slice();
}

/** Parses and validates fuser.json content (already JSON-decoded). */
export function readManifest(json: unknown): FuserManifest {
  if (!isObj(json)) fail('(root)', 'must be a JSON object', json);
  const o = json;
  if (o.format !== 'c2c-fuser') fail('format', `must be "c2c-fuser", got ${JSON.stringify(o.format)}`, o.format);
  const version = o.format_version;
  if (version !== 1 && version !== FUSER_FORMAT_VERSION) {
    fail('format_version',
      `must be 1 or ${FUSER_FORMAT_VERSION} (the versions this runtime reads), got ${JSON.stringify(version)}`, version);
  }
  if (o.projector_class !== 'C2CProjector') fail('projector_class',
    `must be "C2CProjector", got ${JSON.stringify(o.projector_class)}`, o.projector_class);
  if (!DTYPES.includes(o.dtype as FuserDType)) fail('dtype',
    `must be one of ${DTYPES.join(', ')}, got ${JSON.stringify(o.dtype)}`, o.dtype);
  const receiver = dims(o, 'receiver');
  const sharer = dims(o, 'sharer');
  const numMlpLayers = posInt(o, 'num_mlp_layers', 'num_mlp_layers', 64, 3);
  const layersProblem = numMlpLayersProblem(numMlpLayers);
  if (layersProblem) fail('num_mlp_layers', layersProblem, numMlpLayers);
  const hiddenDim = posInt(o, 'hidden_dim', 'hidden_dim');
  const intermediateDim = posInt(o, 'intermediate_dim', 'intermediate_dim');
  // Version 1 gave scalar_mlp2 the intermediate width, a layout upstream never builds; with hidden = intermediate
  // (every fuser written so far) the two layouts are the same bytes, otherwise the file cannot be read correctly.
  if (version === 1 && hiddenDim !== intermediateDim) {
    fail('format_version',
      `1 with hidden_dim (${hiddenDim}) ≠ intermediate_dim (${intermediateDim}) stores scalar_mlp2 at the intermediate width, `
      + `which upstream's C2CProjector never builds; re-convert the checkpoint with this version (format_version ${FUSER_FORMAT_VERSION})`, version);
  }
  const config: FuserConfig = {
    receiver,
    sharer,
    hiddenDim,
    intermediateDim,
    numMlpLayers,
    rmsNormEps: posNum(o, 'rms_norm_eps', 1e-6),
    scalarTemperature: posNum(o, 'scalar_temperature', 1),
    dtype: o.dtype as FuserDType,
    layerMap: layerMap(o, receiver, sharer),
  };
  if (o.alignment !== undefined) {
    const a = o.alignment;
    if (!isObj(a) || typeof a.enabled !== 'boolean') fail('alignment.enabled', 'must be a boolean', isObj(a) ? a.enabled : a);
    const strategy = a.strategy ?? 'longest';
    if (strategy !== 'first' && strategy !== 'longest') fail('alignment.strategy',
      `must be "first" or "longest", got ${JSON.stringify(strategy)}`, strategy);
    config.alignment = { enabled: a.enabled as boolean, strategy };
  }
  const files = o.files;
  if (!Array.isArray(files) || files.length === 0) fail('files', 'must be a non-empty array of safetensors file names', files);
  const seen = new Set<string>();
  (files as unknown[]).forEach((f, i) => {
    if (typeof f !== 'string' || !/^[\w.\-]+(\/[\w.\-]+)*$/.test(f) || f.split('/').some((s) => s === '..' || s === '.')) {
      fail(`files[${i}]`, `must be a relative file name without "..", got ${JSON.stringify(f)}`, f);
    }
    if (seen.has(f as string)) fail(`files[${i}]`, `repeats "${f}"`, f);
    seen.add(f as string);
  });
  const metadata = o.metadata ?? {};
  if (!isObj(metadata)) fail('metadata', 'must be an object when present', metadata);
  return { config, files: (files as string[]).slice(), integrity: readIntegrity(o.integrity, seen), metadata };
}

/**
 * `integrity: { "<file>": { "size": <bytes>, "sha256": "<hex>" } }`, both fields optional. Entries for files not
 * in `files` are ignored (nothing reads those files); present fields must be valid.
 */
function readIntegrity(v: unknown, files: Set<string>): FuserManifest['integrity'] {
  if (v === undefined) return {};
  if (!isObj(v)) fail('integrity', 'must be an object of per-file { size, sha256 } when present', v);
  const out: FuserManifest['integrity'] = {};
  for (const [file, facts] of Object.entries(v)) {
    const at = `integrity["${file}"]`;
    if (!isObj(facts)) fail(at, 'must be an object with size and/or sha256', facts);
    const entry: { size?: number; sha256?: string } = {};
    if (facts.size !== undefined) {
      if (typeof facts.size !== 'number' || !Number.isSafeInteger(facts.size) || facts.size < 0) {
        fail(`${at}.size`, `must be a byte count, got ${JSON.stringify(facts.size)}`, facts.size);
      }
      entry.size = facts.size;
    }
    if (facts.sha256 !== undefined) {
      const hex = typeof facts.sha256 === 'string' && /^[0-9a-f]{64}$/.test(facts.sha256);
      if (!hex) fail(`${at}.sha256`, 'must be 64 lowercase hex digits', facts.sha256);
      entry.sha256 = facts.sha256 as string;
    }
    if (files.has(file)) out[file] = entry;
  }
  return out;
}

/** Public name for readManifest. */
export const parseFuserJson = readManifest;
