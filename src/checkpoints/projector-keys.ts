/**
 * The official `C2CProjector` parameter set for given dims, the strict key/shape check against a loaded
 * state dict (the official loader uses `strict=False`, so a mismatched checkpoint would load silently
 * there), and the mapping from official keys to `ProjectorPathParams`.
 */
import { CheckpointFormatError } from '../errors';
import type { FFNBlockParams, LayerProjector, LinearParams, ProjectorPathParams } from '../types';
import { PATHS, ffnModules, inDimOf, outDimOf, pathTensorShapes, type FfnModule, type FuserDims } from '../fuser/shapes';
import type { LoadedTensor } from './torch-archive';

export interface ProjectorDims {
  /** Sharer head dim (official `source_dim`) and KV heads. */
  sourceDim: number;
  sourceHeads: number;
  targetDim: number;
  targetHeads: number;
  hiddenDim: number;
  intermediateDim: number;
  /** Official `num_layers` (≥ 3): proj_mlp2 has numLayers - 2 FFN blocks. */
  numLayers: number;
}

/** Training-only buffer; present in every official file, never used at inference. */
export const IGNORED_KEYS = new Set(['gate_temperature']);

/** The projector dims as the shared shape helpers take them (layer counts do not enter a projector's shapes). */
export function projectorFuserDims(d: ProjectorDims): FuserDims {
  return {
    receiver: { numLayers: 1, kvHeads: d.targetHeads, headDim: d.targetDim },
    sharer: { numLayers: 1, kvHeads: d.sourceHeads, headDim: d.sourceDim },
    hiddenDim: d.hiddenDim,
    intermediateDim: d.intermediateDim,
    numMlpLayers: d.numLayers,
  };
}

/** Official state-dict key → shape (gate logits are 0-d), as upstream's C2CProjector builds it. */
export function expectedProjectorShapes(d: ProjectorDims): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const path = pathTensorShapes(projectorFuserDims(d));
  for (const p of PATHS) for (const t of path) m.set(`${p}_${t.suffix}`, t.shape);
  return m;
}

/** Throws one CheckpointFormatError naming every missing, unexpected and misshapen key. */
export function checkProjectorKeys(tensors: Map<string, LoadedTensor>, d: ProjectorDims, fileName: string): void {
  const expected = expectedProjectorShapes(d);
  const missing = [...expected.keys()].filter((k) => !tensors.has(k));
  const unexpected = [...tensors.keys()].filter((k) => !expected.has(k) && !IGNORED_KEYS.has(k));
  const misshapen: { key: string; expected: number[]; actual: number[] }[] = [];
  for (const [k, shape] of expected) {
    const t = tensors.get(k);
    if (t && !sameShape(t.shape, shape)) misshapen.push({ key: k, expected: shape, actual: t.shape });
  }
  if (missing.length + unexpected.length + misshapen.length === 0) return;
  const parts: string[] = [];
  if (missing.length) parts.push(`missing ${list(missing)}`);
  if (unexpected.length) parts.push(`unexpected ${list(unexpected)}`);
  if (misshapen.length) {
    parts.push(`wrong shape ${misshapen.slice(0, 8).map((x) => `'${x.key}' [${x.actual.join(', ')}] (expected [${x.expected.join(', ')}])`).join(', ')}${misshapen.length > 8 ? ` and ${misshapen.length - 8} more` : ''}`);
  }
  throw new CheckpointFormatError(`${fileName}: state dict does not match C2CProjector(${dimsText(d)}): ${parts.join('; ')}`, {
    field: fileName,
    tensor: missing[0] ?? unexpected[0] ?? misshapen[0]?.key,
    missing,
    unexpected,
    misshapen,
  });
}

/** Builds both paths of one layer from a checked state dict (arrays are taken over, not copied). */
export function toLayerProjector(tensors: Map<string, LoadedTensor>, d: ProjectorDims): LayerProjector {
  const get = (k: string): Float32Array => tensors.get(k)!.data;
  const linear = (k: string, outDim: number, inDim: number, bias: boolean): LinearParams =>
    bias ? { weight: get(`${k}.weight`), bias: get(`${k}.bias`), outDim, inDim } : { weight: get(`${k}.weight`), outDim, inDim };
  const dims = projectorFuserDims(d);
  const ffn = (p: string, m: FfnModule): FFNBlockParams[] =>
    Array.from({ length: m.blocks }, (_, b) => ({
      norm: get(`${p}_${m.name}.blocks.${b}.norm.weight`),
      w1: linear(`${p}_${m.name}.blocks.${b}.w1`, m.inner, d.hiddenDim, false),
      w2: linear(`${p}_${m.name}.blocks.${b}.w2`, d.hiddenDim, m.inner, false),
    }));
  const [mlp1, scalarMlp2, projMlp2] = ffnModules(dims);
  const inDim = inDimOf(dims);
  const outDim = outDimOf(dims);
  const path = (p: string): ProjectorPathParams => ({
    in: linear(`${p}_in`, d.hiddenDim, inDim + outDim, true),
    mlp1: ffn(p, mlp1),
    scalarMlp2: ffn(p, scalarMlp2),
    scalarHead: linear(`${p}_scalar_head`, d.targetHeads, d.hiddenDim, true),
    projMlp2: ffn(p, projMlp2),
    projOut: linear(`${p}_proj_out`, outDim, d.hiddenDim, true),
    gateLogit: get(`${p}_gate_logit`)[0],
  });
  return { key: path('key'), value: path('value') };
}

function sameShape(actual: number[], expected: number[]): boolean {
  // A gate logit saved as [1] instead of 0-d is the same scalar.
  if (expected.length === 0) return actual.length === 0 || (actual.length === 1 && actual[0] === 1);
  return actual.length === expected.length && actual.every((v, i) => v === expected[i]);
}

function list(keys: string[]): string {
  const shown = keys.slice(0, 8).map((k) => `'${k}'`).join(', ');
  return keys.length > 8 ? `${shown} and ${keys.length - 8} more` : shown;
}

function dimsText(d: ProjectorDims): string {
  return `source ${d.sourceHeads}x${d.sourceDim}, target ${d.targetHeads}x${d.targetDim}, hidden ${d.hiddenDim}, intermediate ${d.intermediateDim}, num_layers ${d.numLayers}`;
}
