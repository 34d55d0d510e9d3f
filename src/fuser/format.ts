/**
 * The c2c-web fuser format (docs/fuser-format.md): validates fuser.json, checks the safetensors tensor set
 * against the C2CProjector parameter set (missing, unexpected, misshapen, wrongly typed or non-finite
 * tensors are each named), and builds FuserWeights. Also serialises FuserWeights back to the format.
 */
import { FuserFormatError, C2CError } from '../errors';
import type { FFNBlockParams, FuserConfig, FuserDType, FuserWeights, LinearParams, ModelKVDims, ProjectorPathParams } from './types';
import { terminalLayerMap } from './types';
import { PATHS, ffnModules, inDimOf, outDimOf, pathTensorShapes, type FfnModule, type PathName } from './shapes';
import { parseSafetensors, tensorToFloat32, writeSafetensors, type SafetensorsDType, type SafetensorsTensor } from './safetensors';
import { float32ToBFloat16Bits, float32ToFloat16Bits } from './half';
import { FUSER_FORMAT_VERSION, readManifest, type FuserManifest } from './manifest';
import { checkInt8Weight, dequantizeInt8, quantizeFuserWeights } from './quantize';

export { parseFuserJson, type FuserManifest } from './manifest';

const STORAGE_DTYPE: Record<FuserDType, SafetensorsDType> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', int8: 'I8' };
/** Suffix of the per-output-channel scale tensor of an int8 Linear weight (`<weight name>.scale`). */
export const SCALE_SUFFIX = '.scale';

/** Safetensors dtype of one expected tensor: int8 fusers store only 2-D Linear weights as I8, the rest F32. */
export function tensorStorage(dtype: FuserDType, t: { name: string; shape: number[] }): SafetensorsDType {
  if (dtype !== 'int8') return STORAGE_DTYPE[dtype];
  return t.shape.length === 2 && !t.name.endsWith(SCALE_SUFFIX) ? 'I8' : 'F32';
}
export { PATHS, type PathName } from './shapes';

/** Every tensor a fuser with this config must contain, with its shape (official keys prefixed by `<layer>.`). */
export function expectedFuserTensors(cfg: FuserConfig): { name: string; shape: number[] }[] {
  const path = pathTensorShapes(cfg);
  const out: { name: string; shape: number[] }[] = [];
  for (let l = 0; l < cfg.receiver.numLayers; l++) {
    for (const p of PATHS) for (const t of path) out.push({ name: `${l}.${p}_${t.suffix}`, shape: t.shape });
  }
  // int8: every 2-D (Linear) weight is followed by its F32 `[out]` scale tensor.
  if (cfg.dtype === 'int8') return out.flatMap((w) => (w.shape.length === 2 ? [w, { name: `${w.name}${SCALE_SUFFIX}`, shape: [w.shape[0]] }] : [w]));
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
      if (!Number.isFinite(data[i])) throw new FuserFormatError(`tensor "${w.name}" contains a non-finite value at index ${i}`, { tensor: w.name, index: i });
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

/** Serialises weights to fuser.json + one safetensors file, rounding to the storage dtype ('int8' quantises). */
export function serializeFuser(
  weights: FuserWeights,
  opts: { dtype?: FuserDType; metadata?: Record<string, unknown>; fileName?: string } = {},
): { json: Record<string, unknown>; files: Record<string, Uint8Array> } {
  const cfg = weights.config;
  const dtype = opts.dtype ?? cfg.dtype;
  const fileName = opts.fileName ?? 'fuser.safetensors';
  const encode = (data: Float32Array): ArrayBufferView => {
    if (dtype === 'float32' || dtype === 'int8') return data; // int8 fusers keep 1-D tensors f32
    const bits = new Uint16Array(data.length);
    const conv = dtype === 'float16' ? float32ToFloat16Bits : float32ToBFloat16Bits;
    for (let i = 0; i < data.length; i++) bits[i] = conv(data[i]);
    return bits;
  };
  const byName = new Map<string, Float32Array>();
  const quant = new Map<string, NonNullable<LinearParams['quant']>>();
  // An int8 target reuses existing int8 data as is (requantising q·scale could move a scale by an ulp).
  const src = dtype === 'int8' ? quantizeFuserWeights(weights) : weights;
  const setW = (name: string, lin: LinearParams) => {
    byName.set(name, lin.weight);
    if (lin.quant) quant.set(name, lin.quant);
  };
  src.layers.forEach((layer, l) => {
    for (const p of PATHS) {
      const path = layer[p];
      const pre = `${l}.${p}`;
      setW(`${pre}_in.weight`, path.in);
      byName.set(`${pre}_in.bias`, path.in.bias!);
      for (const m of ffnModules(cfg)) {
        path[m.field].forEach((b, i) => {
          const bp = `${pre}_${m.name}.blocks.${i}`;
          byName.set(`${bp}.norm.weight`, b.norm);
          setW(`${bp}.w1.weight`, b.w1);
          setW(`${bp}.w2.weight`, b.w2);
        });
      }
      setW(`${pre}_scalar_head.weight`, path.scalarHead);
      byName.set(`${pre}_scalar_head.bias`, path.scalarHead.bias!);
      setW(`${pre}_proj_out.weight`, path.projOut);
      byName.set(`${pre}_proj_out.bias`, path.projOut.bias!);
      byName.set(`${pre}_gate_logit`, new Float32Array([path.gateLogit]));
    }
  });
  const tensors = expectedFuserTensors({ ...cfg, dtype }).map((w) => {
    const storage = tensorStorage(dtype, w);
    if (dtype === 'int8' && (storage === 'I8' || w.name.endsWith(SCALE_SUFFIX))) {
      const q = quant.get(storage === 'I8' ? w.name : w.name.slice(0, -SCALE_SUFFIX.length));
      if (!q) throw new FuserFormatError(`cannot serialise: weights lack tensor "${w.name}"`, { tensor: w.name });
      return { name: w.name, dtype: storage, shape: w.shape, data: storage === 'I8' ? q.weight : q.scale };
    }
    const data = byName.get(w.name);
    if (!data) throw new FuserFormatError(`cannot serialise: weights lack tensor "${w.name}"`, { tensor: w.name });
    return { name: w.name, dtype: storage, shape: w.shape, data: encode(data) };
  });
  const json: Record<string, unknown> = {
    format: 'c2c-fuser',
    format_version: FUSER_FORMAT_VERSION,
    projector_class: 'C2CProjector',
    dtype,
    receiver: dimsJson(cfg.receiver),
    sharer: dimsJson(cfg.sharer),
    hidden_dim: cfg.hiddenDim,
    intermediate_dim: cfg.intermediateDim,
    num_mlp_layers: cfg.numMlpLayers,
    rms_norm_eps: cfg.rmsNormEps,
    scalar_temperature: cfg.scalarTemperature,
    layer_map: isTerminal(cfg) ? 'terminal' : cfg.layerMap.slice(),
    files: [fileName],
    ...(cfg.alignment ? { alignment: { ...cfg.alignment } } : {}),
    metadata: opts.metadata ?? {},
  };
  return { json, files: { [fileName]: writeSafetensors(tensors) } };
}

function dimsJson(d: ModelKVDims) {
  return { num_layers: d.numLayers, num_kv_heads: d.kvHeads, head_dim: d.headDim };
}

function isTerminal(cfg: FuserConfig): boolean {
  const t = terminalLayerMap(cfg.receiver.numLayers, cfg.sharer.numLayers);
  return t.every((s, i) => s === cfg.layerMap[i]);
}

/** Fetches fuser.json and its files relative to `baseUrl` (a folder URL, with or without trailing slash). */
export async function loadFuserFromUrl(
  baseUrl: string,
  opts: { fetch?: typeof fetch; signal?: AbortSignal } & LoadFuserOptions = {},
): Promise<FuserWeights> {
  const doFetch = opts.fetch ?? fetch;
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const get = async (name: string): Promise<Response> => {
    let res: Response;
    try {
      res = await doFetch(new URL(name, new URL(base, globalThis.location?.href ?? 'http://localhost/')).href, { signal: opts.signal });
    } catch (e) {
      if ((e as Error)?.name === 'AbortError' || e instanceof C2CError) throw e;
      throw new FuserFormatError(`could not fetch ${base}${name}: ${(e as Error).message}`, { file: name }, { cause: e });
    }
    if (!res.ok) throw new FuserFormatError(`could not fetch ${base}${name}: HTTP ${res.status}`, { file: name, status: res.status });
    return res;
  };
  let json: unknown;
  try {
    json = await (await get('fuser.json')).json();
  } catch (e) {
    if (e instanceof C2CError || (e as Error)?.name === 'AbortError') throw e;
    throw new FuserFormatError(`fuser.json is not valid JSON: ${(e as Error).message}`, { field: 'fuser.json' });
  }
  const manifest: FuserManifest = readManifest(json);
  const files: Record<string, Uint8Array> = {};
  for (const f of manifest.files) files[f] = new Uint8Array(await (await get(f)).arrayBuffer());
  return loadFuserWeights(json, files, { weightDType: opts.weightDType });
}
