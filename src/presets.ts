/**
 * Presets: the embedded offline pair and the paper's released pairs (Hub ONNX models + official C2C fusers
 * from nics-efc/C2C_Fuser). Architecture numbers come from the models' public config.json files; they drive
 * the memory budget (src/memory.ts) and the fuser shape check before anything is downloaded.
 */
import { pathTensorShapes } from './fuser/shapes';
import type { EngineOptions } from './types';

export interface ModelArch {
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  kvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  maxContext: number;
  tiedEmbeddings: boolean;
}

export interface PresetModel {
  /** Hub id (onnx-community export) or the local folder name under the models base path. */
  id: string;
  arch: ModelArch;
}

export type FuserSource =
  | { kind: 'c2c-web'; path: string }
  /** An official checkpoint folder (`final/projector_{i}.pt` + json), loaded directly. */
  | { kind: 'official'; repo: string; folder: string };

export interface PairPreset {
  name: string;
  label: string;
  receiver: PresetModel;
  sharer: PresetModel;
  fuser: FuserSource;
  /** Official fusers: C2CProjector hidden/intermediate width (1024) and num_layers (3). */
  fuserHidden: number;
  fuserIntermediate: number;
  fuserMlpLayers: number;
  /**
   * Chat template variables both models get (`ModelSource.chatTemplateOptions`): Qwen3 runs without its think
   * block, as in the paper's evaluation. Token alignment is not a preset field: it comes from the checkpoint's
   * own config.json (`is_do_alignment`, `alignment_strategy`), the way upstream's loaders read it.
   */
  chatTemplateOptions: Record<string, unknown>;
}

const qwen3_0_6b: ModelArch = { numLayers: 28, hiddenSize: 1024, numHeads: 16, kvHeads: 8, headDim: 128, intermediateSize: 3072, vocabSize: 151936, maxContext: 40960, tiedEmbeddings: true };
const qwen3_1_7b: ModelArch = { numLayers: 28, hiddenSize: 2048, numHeads: 16, kvHeads: 8, headDim: 128, intermediateSize: 6144, vocabSize: 151936, maxContext: 40960, tiedEmbeddings: true };
const qwen3_4b: ModelArch = { numLayers: 36, hiddenSize: 2560, numHeads: 32, kvHeads: 8, headDim: 128, intermediateSize: 9728, vocabSize: 151936, maxContext: 40960, tiedEmbeddings: true };
const qwen25_0_5b: ModelArch = { numLayers: 24, hiddenSize: 896, numHeads: 14, kvHeads: 2, headDim: 64, intermediateSize: 4864, vocabSize: 151936, maxContext: 32768, tiedEmbeddings: true };
const qwen25_1_5b: ModelArch = { numLayers: 28, hiddenSize: 1536, numHeads: 12, kvHeads: 2, headDim: 128, intermediateSize: 8960, vocabSize: 151936, maxContext: 32768, tiedEmbeddings: true };
const llama32_1b: ModelArch = { numLayers: 16, hiddenSize: 2048, numHeads: 32, kvHeads: 8, headDim: 64, intermediateSize: 8192, vocabSize: 128256, maxContext: 131072, tiedEmbeddings: true };

const OFFICIAL_REPO = 'nics-efc/C2C_Fuser';
const official = (folder: string): FuserSource => ({ kind: 'official', repo: OFFICIAL_REPO, folder });
const released = { fuserHidden: 1024, fuserIntermediate: 1024, fuserMlpLayers: 3, chatTemplateOptions: { enable_thinking: false } };

/** The paper's released pairs (receiver ← sharer). Hub ids are onnx-community exports. */
export const HUB_PRESETS: readonly PairPreset[] = [
  {
    name: 'qwen3-0.6b+qwen2.5-0.5b',
    label: 'Qwen3-0.6B ← Qwen2.5-0.5B-Instruct',
    receiver: { id: 'onnx-community/Qwen3-0.6B-ONNX', arch: qwen3_0_6b },
    sharer: { id: 'onnx-community/Qwen2.5-0.5B-Instruct', arch: qwen25_0_5b },
    fuser: official('qwen3_0.6b+qwen2.5_0.5b_Fuser'),
    ...released,
  },
  {
    name: 'qwen3-0.6b+llama3.2-1b',
    label: 'Qwen3-0.6B ← Llama-3.2-1B-Instruct',
    receiver: { id: 'onnx-community/Qwen3-0.6B-ONNX', arch: qwen3_0_6b },
    sharer: { id: 'onnx-community/Llama-3.2-1B-Instruct', arch: llama32_1b },
    fuser: official('qwen3_0.6b+llam3.2_1b_Fuser'),
    ...released,
  },
  {
    name: 'qwen3-0.6b+qwen3-4b',
    label: 'Qwen3-0.6B ← Qwen3-4B',
    receiver: { id: 'onnx-community/Qwen3-0.6B-ONNX', arch: qwen3_0_6b },
    sharer: { id: 'onnx-community/Qwen3-4B-ONNX', arch: qwen3_4b },
    fuser: official('qwen3_0.6b+qwen3_4b_Fuser'),
    ...released,
  },
  {
    name: 'qwen3-1.7b+qwen2.5-1.5b',
    label: 'Qwen3-1.7B ← Qwen2.5-1.5B-Instruct',
    receiver: { id: 'onnx-community/Qwen3-1.7B-ONNX', arch: qwen3_1_7b },
    sharer: { id: 'onnx-community/Qwen2.5-1.5B-Instruct', arch: qwen25_1_5b },
    fuser: official('qwen3_1.7b+qwen2.5_1.5b_Fuser'),
    ...released,
  },
];

/** Number of parameters of a Qwen/Llama-style decoder from its architecture (norms included). */
export function decoderParams(a: ModelArch): number {
  const q = a.hiddenSize * a.numHeads * a.headDim;
  const kv = 2 * a.hiddenSize * a.kvHeads * a.headDim;
  const o = a.numHeads * a.headDim * a.hiddenSize;
  const mlp = 3 * a.hiddenSize * a.intermediateSize;
  const norms = 2 * a.hiddenSize + 2 * a.headDim;
  const embed = a.vocabSize * a.hiddenSize * (a.tiedEmbeddings ? 1 : 2);
  return a.numLayers * (q + kv + o + mlp + norms) + embed + a.hiddenSize;
}

/** Parameters of one C2CProjector (both paths) for the given dims, counted from upstream's tensor shapes. */
export function projectorParams(inDim: number, outDim: number, outHeads: number, hidden: number, intermediate: number, mlpLayers: number): number {
  const dims = {
    receiver: { numLayers: 1, kvHeads: outHeads, headDim: outDim / outHeads },
    sharer: { numLayers: 1, kvHeads: 1, headDim: inDim },
    hiddenDim: hidden,
    intermediateDim: intermediate,
    numMlpLayers: mlpLayers,
  };
  return 2 * pathTensorShapes(dims).reduce((n, t) => n + t.shape.reduce((a, d) => a * d, 1), 0);
}

export function presetFuserParams(p: PairPreset): number {
  const inDim = p.sharer.arch.kvHeads * p.sharer.arch.headDim;
  const outDim = p.receiver.arch.kvHeads * p.receiver.arch.headDim;
  return p.receiver.arch.numLayers * projectorParams(inDim, outDim, p.receiver.arch.kvHeads, p.fuserHidden, p.fuserIntermediate, p.fuserMlpLayers);
}

/** The URL of a preset's released fuser folder on the Hub (an official-layout folder, loaded directly). */
export function presetFuserUrl(p: PairPreset, hubBase = 'https://huggingface.co'): string {
  return p.fuser.kind === 'official' ? `${hubBase}/${p.fuser.repo}/resolve/main/${p.fuser.folder}/` : p.fuser.path;
}

/**
 * Engine options for a preset, as a Hub user runs it: both models by Hub id (remote models allowed), the
 * released fuser straight from its Hub folder (official layout; the sharer depth, which it does not store, from
 * the preset), the preset's chat template variables. `overrides` replaces any of it (e.g. `localPath` sources
 * and a local fuser URL for stand-ins, a dtype, a device); `overrides.remoteHost` (a Hub mirror) serves the
 * fuser folder too.
 */
export function presetEngineOptions(p: PairPreset, overrides: Partial<EngineOptions> = {}): EngineOptions {
  const source = (m: PresetModel) => ({ id: m.id, chatTemplateOptions: { ...p.chatTemplateOptions } });
  const hub = overrides.remoteHost?.replace(/\/+$/, '');
  const fuser = p.fuser.kind === 'official'
    ? { url: presetFuserUrl(p, hub), format: 'official' as const, sharerNumLayers: p.sharer.arch.numLayers }
    : { url: presetFuserUrl(p, hub), format: 'c2c-web' as const };
  return { receiver: source(p.receiver), sharer: source(p.sharer), fuser, allowRemoteModels: true, ...overrides };
}

export function findPreset(name: string): PairPreset | undefined {
  return HUB_PRESETS.find((p) => p.name === name);
}
