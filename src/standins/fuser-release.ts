/**
 * A random C2C fuser in the official release layout (nics-efc/C2C_Fuser/<pair>_Fuser, c2c-reference §5):
 *   config.json                 training-recipe-like object (model.base_model, teacher_model,
 *                               is_do_alignment, alignment_strategy, projector, mapping)
 *   final/projector_{i}.pt      torch.save(C2CProjector.state_dict()), bfloat16 (torch-save.ts)
 *   final/projector_{i}.json    {"class": "C2CProjector", "init_args": {…, "dtype": torch.dtype bfloat16}}
 *   final/projector_config.json the terminal layer map {"0": {"1": {"<t>": [[G(t), t]]}}}
 * Keys and shapes come from src/fuser/shapes.ts (upstream's C2CProjector); state-dict order is upstream's
 * registration order: the two gate logits, the gate_temperature buffer, then per path in, mlp1,
 * scalar_mlp2, scalar_head, proj_mlp2, proj_out. Values: Linear weights and biases normal-ish std 0.02,
 * RMSNorm weights 1 ± 0.02, gate logits +1 (open) except layer 0's value gate (−1, closed: trained fusers
 * keep > 98% of gates open), gate_temperature 0.001 (the annealed final value).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PATHS, ffnModules, pathTensorShapes, type FuserDims } from '../fuser/shapes';
import { terminalLayerMap } from './families';
import { fillNormalish, tensorSeed } from './random';
import { torchSaveStateDict, type StateDictTensor } from './torch-save';

export interface FuserReleaseSpec {
  baseModel: string;
  teacherModel: string;
  dims: FuserDims;
  alignment: { enabled: boolean; strategy: 'first' | 'longest' };
  seed: number;
}

/** Upstream's module registration order inside one path. */
const MODULE_ORDER = ['in', 'mlp1', 'scalar_mlp2', 'scalar_head', 'proj_mlp2', 'proj_out'];
const FINAL_TEMPERATURE = 0.001;

const moduleOf = (suffix: string): string => suffix.split('.')[0];

/** Every state-dict entry of projector `index`, in upstream's order, with its values. */
export function projectorStateDict(d: FuserDims, index: number, seed: number): StateDictTensor[] {
  const shapes = pathTensorShapes(d);
  const out: StateDictTensor[] = PATHS.map((p) => ({ name: `${p}_gate_logit`, shape: [],
    values: Float32Array.of(index === 0 && p === 'value' ? -1 : 1) }));
  out.push({ name: 'gate_temperature', shape: [], values: Float32Array.of(FINAL_TEMPERATURE) });
  for (const p of PATHS) {
    for (const m of MODULE_ORDER) {
      for (const t of shapes.filter((s) => moduleOf(s.suffix) === m)) {
        const name = `${p}_${t.suffix}`;
        const values = new Float32Array(t.shape.reduce((n, x) => n * x, 1));
        fillNormalish(values, tensorSeed(seed, `projector_${index}.${name}`), 0.02, t.suffix.endsWith('norm.weight') ? 1 : 0);
        out.push({ name, shape: t.shape, values });
      }
    }
  }
  return out;
}

/** The state dict's `_metadata` module paths ('' first), as nn.Module.state_dict() records them. */
export function projectorModules(d: FuserDims): string[] {
  const blocks = new Map(ffnModules(d).map((m) => [m.name as string, m.blocks]));
  const out = [''];
  for (const p of PATHS) {
    for (const m of MODULE_ORDER) {
      out.push(`${p}_${m}`);
      const n = blocks.get(m);
      if (n === undefined) continue;
      out.push(`${p}_${m}.blocks`);
      for (let b = 0; b < n; b++) out.push(...['', '.norm', '.w1', '.w2', '.dropout'].map((s) => `${p}_${m}.blocks.${b}${s}`));
    }
  }
  return out;
}

function initArgs(d: FuserDims): Record<string, unknown> {
  return {
    source_dim: d.sharer.headDim,
    target_dim: d.receiver.headDim,
    source_num_heads: d.sharer.kvHeads,
    target_num_heads: d.receiver.kvHeads,
    hidden_dim: d.hiddenDim,
    intermediate_dim: d.intermediateDim,
    num_layers: d.numMlpLayers,
    dropout: 0.1,
    initial_temperature: 1.0,
    final_temperature: FINAL_TEMPERATURE,
    anneal_steps: 1929,
    dtype: { __type__: 'torch.dtype', value: 'bfloat16' },
  };
}

function recipe(s: FuserReleaseSpec, folder: string): Record<string, unknown> {
  return {
    model: {
      base_model: s.baseModel,
      teacher_model: s.teacherModel,
      is_do_alignment: s.alignment.enabled,
      alignment_strategy: s.alignment.strategy,
      projector: { type: 'C2CProjector', params: Object.fromEntries(
        Object.entries(initArgs(s.dims)).filter(([k]) => !k.startsWith('source') && !k.startsWith('target') && k !== 'dtype')) },
      mapping: 'last_aligned',
    },
    training: { learning_rate: 0.0001, weight_decay: 0.01, num_epochs: 1, seed: 42, max_length: 2048 },
    output: { output_dir: `local/checkpoints/${folder}` },
    data: { type: 'OpenHermesChatDataset', num_samples: 500000 },
  };
}

/** Writes the release folder into `dir`; returns the files (relative paths) and their sizes. */
export function writeFuserRelease(dir: string, s: FuserReleaseSpec, folderName: string,
  onProjector?: (i: number, n: number) => void): { name: string; bytes: number }[] {
  const final = join(dir, 'final');
  mkdirSync(final, { recursive: true });
  const files: { name: string; bytes: number }[] = [];
  const put = (name: string, data: string | Uint8Array) => {
    writeFileSync(join(dir, name), data);
    files.push({ name, bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.length });
  };
  const modules = projectorModules(s.dims);
  const T = s.dims.receiver.numLayers;
  for (let i = 0; i < T; i++) {
    put(`final/projector_${i}.pt`, torchSaveStateDict(`projector_${i}`, projectorStateDict(s.dims, i, s.seed), modules));
    put(`final/projector_${i}.json`, `${JSON.stringify({ class: 'C2CProjector', init_args: initArgs(s.dims) }, null, 2)}\n`);
    onProjector?.(i + 1, T);
  }
  const map = terminalLayerMap(T, s.dims.sharer.numLayers);
  put('final/projector_config.json', JSON.stringify({ 0: { 1: Object.fromEntries(map.map((g, t) => [String(t), [[g, t]]])) } }));
  // config.json last: a folder with config.json is complete.
  put('config.json', `${JSON.stringify(recipe(s, folderName), null, 2)}\n`);
  return files;
}
