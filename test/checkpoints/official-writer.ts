/**
 * PyTorch-free writer of official C2C checkpoint folders (upstream's layout: config.json, final/projector_{i}.pt
 * torch.save zips, projector_{i}.json, projector_config.json) for tests and the load benchmark. The .pt files
 * are what torch.save writes: a protocol-2 pickle of an OrderedDict of `_rebuild_tensor_v2` tensors over
 * persistent storages, in a stored zip whose records are 64-byte aligned (torch >= 2.1). `torch.load` of a
 * written file is checked in test/checkpoints/official-writer.test.ts when Debian's torch is present.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FuserConfig, FuserWeights, LayerProjector, LinearParams } from '../../src/types';
import { PATHS, ffnModules, type FuserDims } from '../../src/fuser/shapes';
import { PickleWriter, contiguousStride } from './helpers';

export type StoredDType = 'bfloat16' | 'float32';

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Upstream's state-dict entries of one projector (both paths, plus the training-only gate_temperature buffer). */
export function projectorTensors(layer: LayerProjector, dims: FuserDims): NamedTensor[] {
  const out: NamedTensor[] = [];
  const lin = (name: string, l: LinearParams, bias: boolean) => {
    out.push({ name: `${name}.weight`, shape: [l.outDim, l.inDim], data: l.weight });
    if (bias) out.push({ name: `${name}.bias`, shape: [l.outDim], data: l.bias! });
  };
  for (const p of PATHS) {
    const path = layer[p];
    lin(`${p}_in`, path.in, true);
    for (const m of ffnModules(dims)) {
      path[m.field].forEach((b, i) => {
        const bp = `${p}_${m.name}.blocks.${i}`;
        out.push({ name: `${bp}.norm.weight`, shape: [b.norm.length], data: b.norm });
        lin(`${bp}.w1`, b.w1, false);
        lin(`${bp}.w2`, b.w2, false);
      });
    }
    lin(`${p}_scalar_head`, path.scalarHead, true);
    lin(`${p}_proj_out`, path.projOut, true);
    out.push({ name: `${p}_gate_logit`, shape: [], data: Float32Array.of(path.gateLogit) });
  }
  out.push({ name: 'gate_temperature', shape: [], data: Float32Array.of(1) });
  return out;
}

/**
 * The state-dict pickle: OrderedDict{name: _rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict())}
 * over storage `i` of `numel` elements (or the given `storage` key and `offset`, to share one storage).
 */
export function stateDictPickleOf(
  tensors: { name: string; shape: number[]; numel: number; storage?: string; offset?: number }[],
  dtype: StoredDType,
): Uint8Array {
  const storage = dtype === 'bfloat16' ? 'BFloat16Storage' : 'FloatStorage';
  const w = new PickleWriter().op(0x80, 2).global('collections', 'OrderedDict').op(0x29, 0x52).op(0x28);
  tensors.forEach((t, i) => {
    w.str(t.name).global('torch._utils', '_rebuild_tensor_v2').op(0x28);
    w.op(0x28).str('storage').global('torch', storage).str(t.storage ?? String(i)).str('cpu').int(t.numel).op(0x74, 0x51);
    w.int(t.offset ?? 0).tuple(t.shape).tuple(contiguousStride(t.shape)).op(0x89);
    w.global('collections', 'OrderedDict').op(0x29, 0x52).op(0x74, 0x52);
  });
  return w.op(0x75, 0x2e).bytes();
}

export function encodeStorage(data: Float32Array, dtype: StoredDType): Uint8Array {
  if (dtype === 'float32') return new Uint8Array(Float32Array.from(data).buffer);
  const bits = new Uint32Array(Float32Array.from(data).buffer);
  const out = new Uint16Array(data.length);
  // Round to nearest even, as torch's .to(bfloat16) does.
  for (let i = 0; i < bits.length; i++) out[i] = (bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16;
  return new Uint8Array(out.buffer);
}

/** One torch.save file of the given tensors. */
export function torchSaveBytes(tensors: NamedTensor[], dtype: StoredDType, archive = 'archive'): Uint8Array {
  const pkl = stateDictPickleOf(tensors.map((t) => ({ name: t.name, shape: t.shape, numel: t.data.length })), dtype);
  const entries: [string, Uint8Array][] = [
    [`${archive}/data.pkl`, pkl],
    [`${archive}/byteorder`, new TextEncoder().encode('little')],
    ...tensors.map((t, i): [string, Uint8Array] => [`${archive}/data/${i}`, encodeStorage(t.data, dtype)]),
    [`${archive}/version`, new TextEncoder().encode('3\n')],
  ];
  return storedZip(entries);
}

// ---------- stored zip with 64-byte aligned records ----------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip of stored entries whose data starts on 64-byte boundaries (padding in a local "FB" extra field, as torch does). */
export function storedZip(entries: [string, Uint8Array][]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const n = enc.encode(name);
    const base = offset + 30 + n.length + 4;
    const pad = (64 - (base % 64)) % 64;
    const local = new Uint8Array(30 + n.length + 4 + pad);
    const dv = new DataView(local.buffer);
    const crc = crc32(data);
    dv.setUint32(0, 0x04034b50, true);
    dv.setUint16(4, 20, true);
    dv.setUint32(14, crc, true);
    dv.setUint32(18, data.length, true);
    dv.setUint32(22, data.length, true);
    dv.setUint16(26, n.length, true);
    dv.setUint16(28, 4 + pad, true);
    local.set(n, 30);
    dv.setUint16(30 + n.length, 0x4246, true); // 'FB'
    dv.setUint16(32 + n.length, pad, true);
    local.fill(0x5a, 34 + n.length); // 'Z' padding
    const cd = new Uint8Array(46 + n.length);
    const cv = new DataView(cd.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, n.length, true);
    cv.setUint32(42, offset, true);
    cd.set(n, 46);
    parts.push(local, data);
    central.push(cd);
    offset += local.length + data.length;
  }
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let p = 0;
  for (const part of [...parts, ...central, eocd]) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

// ---------- the folder ----------

export interface OfficialFolderOptions {
  dtype?: StoredDType;
  /** Projector file index per receiver layer (default: layer t uses projector_t). */
  projectorIndex?: number[];
  baseModel?: string;
  teacherModel?: string;
}

export function projectorJson(cfg: FuserDims, dtype: StoredDType): Record<string, unknown> {
  return {
    class: 'C2CProjector',
    init_args: {
      source_dim: cfg.sharer.headDim,
      target_dim: cfg.receiver.headDim,
      source_num_heads: cfg.sharer.kvHeads,
      target_num_heads: cfg.receiver.kvHeads,
      hidden_dim: cfg.hiddenDim,
      intermediate_dim: cfg.intermediateDim,
      num_layers: cfg.numMlpLayers,
      dropout: 0.1,
      initial_temperature: 1.0,
      final_temperature: 0.001,
      anneal_steps: 1929,
      dtype: { __type__: 'torch.dtype', value: dtype },
    },
  };
}

export function configJson(cfg: FuserConfig, o: OfficialFolderOptions): Record<string, unknown> {
  return {
    model: {
      base_model: o.baseModel ?? 'receiver',
      teacher_model: o.teacherModel ?? 'sharer',
      is_do_alignment: cfg.alignment?.enabled ?? false,
      alignment_strategy: cfg.alignment?.strategy ?? 'longest',
      mapping: 'last_aligned',
    },
    training: { note: 'written by test/checkpoints/official-writer.ts' },
  };
}

export function projectorConfigJson(layerMap: number[], projectorIndex: number[]): Record<string, unknown> {
  const layers: Record<string, number[][]> = {};
  layerMap.forEach((s, t) => (layers[String(t)] = [[s, projectorIndex[t]]]));
  return { '0': { '1': layers } };
}

const jsonBytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/**
 * The folder's files, one at a time (path, bytes): the .pt of projector i is built only when it is reached, so a
 * full-size folder is written without holding it (`layerOf(i)` may build projector i on demand).
 */
export function* officialFolderEntries(
  cfg: FuserConfig,
  layerOf: (projector: number) => LayerProjector,
  o: OfficialFolderOptions = {},
): Generator<[string, Uint8Array]> {
  const dtype = o.dtype ?? 'bfloat16';
  const index = o.projectorIndex ?? cfg.layerMap.map((_, t) => t);
  yield ['config.json', jsonBytes(configJson(cfg, o))];
  yield ['final/projector_config.json', jsonBytes(projectorConfigJson(cfg.layerMap, index))];
  for (const i of [...new Set(index)].sort((a, b) => a - b)) {
    yield [`final/projector_${i}.json`, jsonBytes(projectorJson(cfg, dtype))];
    yield [`final/projector_${i}.pt`, torchSaveBytes(projectorTensors(layerOf(i), cfg), dtype)];
  }
}

/** All files of an official folder for `weights` (projector i = weights.layers[i]). */
export function officialFolderFiles(weights: FuserWeights, o: OfficialFolderOptions = {}): Record<string, Uint8Array> {
  return Object.fromEntries(officialFolderEntries(weights.config, (i) => weights.layers[i], o));
}

/** Writes the folder to `dir`, one file at a time; returns the bytes written. */
export function writeOfficialFolder(dir: string, entries: Iterable<[string, Uint8Array]>): number {
  let bytes = 0;
  for (const [path, data] of entries) {
    const f = join(dir, path);
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, data);
    bytes += data.length;
  }
  return bytes;
}
