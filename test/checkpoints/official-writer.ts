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
import { stateDictPickle, toBf16Bytes } from './helpers';
import { zipStored } from '../../src/standins/zip-store';

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
  return stateDictPickle(tensors.map((t) => ({ ...t, data: new Float32Array(0), storageNumel: t.numel })), dtype);
}

export function encodeStorage(data: Float32Array, dtype: StoredDType): Uint8Array {
  return dtype === 'float32' ? new Uint8Array(Float32Array.from(data).buffer) : toBf16Bytes(data);
}

/** One torch.save file of the given tensors (f32 or bf16 storages; src/standins/torch-save.ts writes bf16 only). */
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

/** A zip of stored entries with 64-byte aligned data, as torch writes it (the project's one writer: zip-store.ts). */
export function storedZip(entries: [string, Uint8Array][]): Uint8Array {
  return zipStored(entries.map(([name, data]) => ({ name, data })));
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
