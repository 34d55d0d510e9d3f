/**
 * The tensor-set check of the c2c-web fuser format (docs/fuser-format.md): the safetensors tensors against the
 * C2CProjector parameter set of the declared dims (missing, unexpected, misshapen, wrongly typed or non-finite
 * tensors are each named), building FuserWeights. fuser.json itself is validated in manifest.ts.
 */
import { FuserFormatError } from '../../errors';
import type { FFNBlockParams, FuserConfig, FuserDType, FuserWeights, LinearParams, ProjectorPathParams } from '../../types';
import { checkInt8Weight, dequantizeInt8, quantizeFuserWeights } from '../quantize';
import { parseSafetensors, tensorToFloat32, type SafetensorsDType, type SafetensorsTensor } from '../safetensors';
import { PATHS, ffnModules, inDimOf, outDimOf, pathTensorShapes, type FfnModule, type PathName } from '../shapes';
import { readManifest } from './manifest';

const STORAGE_DTYPE: Record<FuserDType, SafetensorsDType> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', int8: 'I8' };
/** Suffix of the per-output-channel scale tensor of an int8 Linear weight (`<weight name>.scale`). */
export const SCALE_SUFFIX = '.scale';

/** Safetensors dtype of one expected tensor: int8 fusers store only 2-D Linear weights as I8, the rest F32. */
export function tensorStorage(dtype: FuserDType, t: { name: string; shape: number[] }): SafetensorsDType {
  if (dtype !== 'int8') return STORAGE_DTYPE[dtype];
  return t.shape.length === 2 && !t.name.endsWith(SCALE_SUFFIX) ? 'I8' : 'F32';
}
export { PATHS, type PathName } from '../shapes';

/** Every tensor a fuser with this config must contain, with its shape (official keys prefixed by `<layer>.`). */
export function expectedFuserTensors(cfg: FuserConfig): { name: string; shape: number[] }[] {
  const path = pathTensorShapes(cfg);
  const out: { name: string; shape: number[] }[] = [];
  for (let l = 0; l < cfg.receiver.numLayers; l++) {
    for (const p of PATHS) for (const t of path) out.push({ name: `${l}.${p}_${t.suffix}`, shape: t.shape });
  }
  // int8: every 2-D (Linear) weight is followed by its F32 `[out]` scale tensor.
  if (cfg.dtype === 'int8') return out.flatMap((w) => (w.shape.length === 2
    ? [w, { name: `${w.name}${SCALE_SUFFIX}`, shape: [w.shape[0]] }] : [w]));
  return out;
}

/** Names a loader accepts and ignores (training-only buffers). */
function isIgnoredTensor(name: string, numLayers: number): boolean {
  const m = /^(\d+)\.gate_temperature$/.exec(name);
  return !!m && Number(m[1]) < numLayers;
}

export interface LoadFuserOptions {
  /** 'int8': quantise a float fuser on load (an int8 file is already int8); default: as stored. */
  weightDType?: 'int8';
}

/**
 * Builds FuserWeights from a parsed fuser.json and the bytes of every file it lists.
 * Throws FuserFormatError (fuser.json / tensor set problems) or SafetensorsFormatError (broken files).
 */
export function loadFuserWeights(json: unknown, files: Record<string, Uint8Array>, opts: LoadFuserOptions = {}): FuserWeights {
  const manifest = readManifest(json);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const file of manifest.files) {
    const bytes = files[file];
    if (!bytes) throw new FuserFormatError(`files: "${file}" is listed in fuser.json but was not provided`, { field: 'files', file });
    for (const [name, t] of parseSafetensors(bytes, file).tensors) {
      if (tensors.has(name)) throw new FuserFormatError(`tensor "${name}" appears in more than one file`, { tensor: name, file });
      tensors.set(name, t);
    }
  }
  const weights = buildWeights(manifest.config, tensors);
  return opts.weightDType === 'int8' ? quantizeFuserWeights(weights) : weights;
}

function buildWeights(cfg: FuserConfig, tensors: Map<string, SafetensorsTensor>): FuserWeights {
  const want = expectedFuserTensors(cfg);
  const wantNames = new Set(want.map((w) => w.name));
  const missing = want.filter((w) => !tensors.has(w.name)).map((w) => w.name);
  if (missing.length) {
    throw new FuserFormatError(`missing tensor${missing.length > 1 ? 's' : ''}: ${preview(missing)}`, { tensor: missing[0], missing });
  }
  const unexpected = [...tensors.keys()].filter((n) => !wantNames.has(n) && !isIgnoredTensor(n, cfg.receiver.numLayers));
  if (unexpected.length) {
    throw new FuserFormatError(`unexpected tensor${unexpected.length > 1 ? 's' : ''} (not part of a C2CProjector with the declared dims): ${preview(unexpected)}`, {
      tensor: unexpected[0],
      unexpected,
    });
  }
  const values = new Map<string, Float32Array>();
  const int8 = new Map<string, Int8Array>();
  for (const w of want) {
    const storage = tensorStorage(cfg.dtype, w);
    const t = tensors.get(w.name)!;
    const shapeOk = sameShape(t.shape, w.shape) || (w.shape.length === 0 && sameShape(t.shape, [1]));
    if (!shapeOk) {
      throw new FuserFormatError(`tensor "${w.name}" has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(w.shape)}`, {
        tensor: w.name,
        expected: w.shape,
        actual: t.shape,
      });
    }
    if (t.dtype !== storage) {
      throw new FuserFormatError(`tensor "${w.name}" is stored as ${t.dtype}, but fuser.json declares dtype "${cfg.dtype}" (${storage})`, {
        tensor: w.name,
        field: 'dtype',
      });
    }
    if (storage === 'I8') {
      int8.set(w.name, new Int8Array(t.data.slice().buffer)); // range checked with its scale below
      continue;
    }
    const data = tensorToFloat32(t);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new FuserFormatError(`tensor "${w.name}" contains a non-finite value at index ${i}`,
        { tensor: w.name, index: i });
    }
    values.set(w.name, data);
  }
  const get = (name: string) => values.get(name)!;
  const linear = (name: string, outDim: number, inDim: number, bias: boolean): LinearParams => {
    const wName = `${name}.weight`;
    const base = { bias: bias ? get(`${name}.bias`) : undefined, outDim, inDim };
    const q = int8.get(wName);
    if (!q) return { weight: get(wName), ...base };
    const scale = get(`${wName}${SCALE_SUFFIX}`);
    checkInt8Weight(wName, q, scale, outDim, inDim);
    return { weight: dequantizeInt8(q, scale, outDim, inDim), ...base, quant: { weight: q, scale } };
  };
  const inDim = inDimOf(cfg);
  const outDim = outDimOf(cfg);
  const H = cfg.hiddenDim;
  const blocksOf = (prefix: string, m: FfnModule): FFNBlockParams[] =>
    Array.from({ length: m.blocks }, (_, b) => ({
      norm: get(`${prefix}_${m.name}.blocks.${b}.norm.weight`),
      w1: linear(`${prefix}_${m.name}.blocks.${b}.w1`, m.inner, H, false),
      w2: linear(`${prefix}_${m.name}.blocks.${b}.w2`, H, m.inner, false),
    }));
  const [mlp1, scalarMlp2, projMlp2] = ffnModules(cfg);
  const path = (l: number, p: PathName): ProjectorPathParams => {
    const pre = `${l}.${p}`;
    return {
      in: linear(`${pre}_in`, H, inDim + outDim, true),
      mlp1: blocksOf(pre, mlp1),
      scalarMlp2: blocksOf(pre, scalarMlp2),
      scalarHead: linear(`${pre}_scalar_head`, cfg.receiver.kvHeads, H, true),
      projMlp2: blocksOf(pre, projMlp2),
      projOut: linear(`${pre}_proj_out`, outDim, H, true),
      gateLogit: get(`${pre}_gate_logit`)[0],
    };
  };
  const layers = Array.from({ length: cfg.receiver.numLayers }, (_, l) => ({ key: path(l, 'key'), value: path(l, 'value') }));
  return { config: cfg, layers };
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function preview(names: string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} … (${names.length} in all)`;
}

