/** Writes FuserWeights in the c2c-web fuser format: fuser.json + one safetensors file (docs/fuser-format.md). */
import { FuserFormatError } from '../../errors';
import type { FuserConfig, FuserDType, FuserWeights, LinearParams, ModelKVDims } from '../../types';
import { float32ToBFloat16Bits, float32ToFloat16Bits } from '../../util/half';
import { terminalLayerMap } from '../layer-map';
import { quantizeFuserWeights } from '../quantize';
import { writeSafetensors } from '../safetensors';
import { PATHS, ffnModules } from '../shapes';
import { sha256Hex } from './files';
import { FUSER_FORMAT_VERSION } from './manifest';
import { SCALE_SUFFIX, expectedFuserTensors, tensorStorage } from './validate';

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
  const bytes = writeSafetensors(tensors);
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
    integrity: { [fileName]: { size: bytes.length } },
    ...(cfg.alignment ? { alignment: { ...cfg.alignment } } : {}),
    metadata: opts.metadata ?? {},
  };
  return { json, files: { [fileName]: bytes } };
}

/** Adds each file's sha256 to fuser.json's `integrity` (WebCrypto; async, so apart from serializeFuser). */
export async function addFileHashes(json: Record<string, unknown>, files: Record<string, Uint8Array>): Promise<Record<string, unknown>> {
  const integrity: Record<string, { size?: number; sha256?: string }> = {
    ...(json.integrity as Record<string, { size?: number }> | undefined) };
  for (const [name, bytes] of Object.entries(files)) {
    const sha256 = await sha256Hex(bytes);
    integrity[name] = { ...integrity[name], size: bytes.length, ...(sha256 ? { sha256 } : {}) };
  }
  return { ...json, integrity };
}

function dimsJson(d: ModelKVDims) {
  return { num_layers: d.numLayers, num_kv_heads: d.kvHeads, head_dim: d.headDim };
}

function isTerminal(cfg: FuserConfig): boolean {
  const t = terminalLayerMap(cfg.receiver.numLayers, cfg.sharer.numLayers);
  return t.every((s, i) => s === cfg.layerMap[i]);
}

