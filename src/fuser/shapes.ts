/**
 * The shape of a C2CProjector as upstream (thu-nics/C2C `rosetta/model/projector.py`) builds it, in one place:
 * every loader, writer, backend and size estimate derives its tensor shapes from here, and every backend runs
 * the one weight check below before it touches a fuser.
 *
 * Per path (K or V): `in` Linear(in_dim + out_dim → H, bias); `mlp1` = RegularMLP(H, intermediate = I, 1 block);
 * `scalar_mlp2` = RegularMLP(H, intermediate = **H**, 1 block) — its inner width is always hidden_dim;
 * `scalar_head` Linear(H → Hr, bias); `proj_mlp2` = RegularMLP(H, I, num_layers − 2 blocks); `proj_out`
 * Linear(H → out_dim, bias); a 0-d `gate_logit`. Upstream's RegularMLP asserts ≥ 1 block, so num_layers ≥ 3.
 */
import { FuserFormatError, InvalidInputError, ShapeMismatchError } from '../errors';
import type { FFNBlockParams, FuserConfig, FuserWeights, LinearParams, ProjectorPathParams } from '../types';

/** The config fields that fix a fuser's tensor shapes. */
export type FuserDims = Pick<FuserConfig, 'receiver' | 'sharer' | 'hiddenDim' | 'intermediateDim' | 'numMlpLayers'>;

/** Upstream `C2CProjector` needs num_layers ≥ 3 (proj_mlp2 is a RegularMLP of num_layers − 2 ≥ 1 blocks). */
export const MIN_NUM_MLP_LAYERS = 3;

export const PATHS = ['key', 'value'] as const;
export type PathName = (typeof PATHS)[number];

/** One RegularMLP of a path: its official module name, our field, block count and FFN inner width. */
export interface FfnModule {
  name: 'mlp1' | 'scalar_mlp2' | 'proj_mlp2';
  field: 'mlp1' | 'scalarMlp2' | 'projMlp2';
  blocks: number;
  inner: number;
}

/** The three RegularMLPs of one path, in upstream's order of construction. */
export function ffnModules(d: FuserDims): FfnModule[] {
  return [
    { name: 'mlp1', field: 'mlp1', blocks: 1, inner: d.intermediateDim },
    { name: 'scalar_mlp2', field: 'scalarMlp2', blocks: 1, inner: d.hiddenDim },
    { name: 'proj_mlp2', field: 'projMlp2', blocks: d.numMlpLayers - 2, inner: d.intermediateDim },
  ];
}

export const inDimOf = (d: FuserDims): number => d.sharer.kvHeads * d.sharer.headDim;
export const outDimOf = (d: FuserDims): number => d.receiver.kvHeads * d.receiver.headDim;

/** Widest FFN inner width of any block (sizes the GPU scratch). */
export const maxInnerDim = (d: FuserDims): number => Math.max(...ffnModules(d).filter((m) => m.blocks > 0).map((m) => m.inner));

/**
 * Every state-dict entry of one path as upstream names it after the `key_`/`value_` prefix (e.g. `in.weight`,
 * `scalar_mlp2.blocks.0.w1.weight`, `gate_logit`), with its shape; 0-d gate logits have shape `[]`.
 */
export function pathTensorShapes(d: FuserDims): { suffix: string; shape: number[] }[] {
  const H = d.hiddenDim;
  const out: { suffix: string; shape: number[] }[] = [
    { suffix: 'in.weight', shape: [H, inDimOf(d) + outDimOf(d)] },
    { suffix: 'in.bias', shape: [H] },
  ];
  for (const m of ffnModules(d)) {
    for (let b = 0; b < m.blocks; b++) {
      const bp = `${m.name}.blocks.${b}`;
      out.push({ suffix: `${bp}.norm.weight`, shape: [H] }, { suffix: `${bp}.w1.weight`, shape: [m.inner, H] },
        { suffix: `${bp}.w2.weight`, shape: [H, m.inner] });
    }
  }
  out.push({ suffix: 'scalar_head.weight', shape: [d.receiver.kvHeads, H] }, { suffix: 'scalar_head.bias', shape: [d.receiver.kvHeads] });
  out.push({ suffix: 'proj_out.weight', shape: [outDimOf(d), H] }, { suffix: 'proj_out.bias', shape: [outDimOf(d)] });
  out.push({ suffix: 'gate_logit', shape: [] });
  return out;
}

/** The `[out, in]` shape of every Linear of one path (each is one GEMM over the fused tokens). */
export function pathLinearShapes(d: FuserDims): [number, number][] {
  return pathTensorShapes(d).filter((t) => t.shape.length === 2).map((t) => [t.shape[0], t.shape[1]]);
}

/** Multiply-add FLOPs (2 per MAC) of one open path per fused token: the Linears; norms and activations excluded. */
export function pathFlopsPerToken(d: FuserDims): number {
  return pathLinearShapes(d).reduce((n, [o, i]) => n + 2 * o * i, 0);
}

/** Why `n` is not a num_layers upstream can build (an integer ≥ 3), or undefined when it is. */
export function numMlpLayersProblem(n: unknown): string | undefined {
  if (Number.isInteger(n) && (n as number) >= MIN_NUM_MLP_LAYERS) return undefined;
  return `must be an integer ≥ ${MIN_NUM_MLP_LAYERS} (upstream's C2CProjector builds proj_mlp2 from num_layers − 2 ≥ 1 blocks), got ${JSON.stringify(n)}`;
}

function checkLinear(p: LinearParams | undefined, outDim: number, inDim: number, hasBias: boolean, what: string): void {
  const ok = !!p && p.outDim === outDim && p.inDim === inDim && p.weight instanceof Float32Array && p.weight.length === outDim * inDim
    && (!hasBias || (p.bias instanceof Float32Array && p.bias.length === outDim));
  if (!ok) {
    const got = p
      ? `[${p.outDim}, ${p.inDim}] (${p.weight?.length} values${hasBias ? `, bias ${p.bias?.length ?? 'missing'}` : ''})` : 'nothing';
    throw new ShapeMismatchError(`${what}: expected weight [${outDim}, ${inDim}]${hasBias ? ` and bias [${outDim}]` : ''}, got ${got}`, {
      field: what, expected: [outDim, inDim], actual: p ? [p.outDim, p.inDim] : null,
    });
  }
}

function checkBlocks(blocks: FFNBlockParams[] | undefined, m: FfnModule, hidden: number, what: string): void {
  if (!Array.isArray(blocks) || blocks.length !== m.blocks) {
    throw new ShapeMismatchError(`${what} has ${blocks?.length ?? 0} FFN blocks, expected ${m.blocks}`,
      { field: what, expected: m.blocks, actual: blocks?.length ?? 0 });
  }
  blocks.forEach((b, i) => {
    if (!(b.norm instanceof Float32Array) || b.norm.length !== hidden) {
      throw new ShapeMismatchError(`${what}.blocks.${i}.norm has ${b.norm?.length} values, expected ${hidden}`,
        { field: `${what}.blocks.${i}.norm` });
    }
    checkLinear(b.w1, m.inner, hidden, false, `${what}.blocks.${i}.w1`);
    checkLinear(b.w2, hidden, m.inner, false, `${what}.blocks.${i}.w2`);
  });
}

/** Checks one path's parameter shapes against the config (a hand-built FuserWeights can be wrong). */
export function checkPathParams(p: ProjectorPathParams, cfg: FuserDims, what: string): void {
  const H = cfg.hiddenDim;
  checkLinear(p.in, H, inDimOf(cfg) + outDimOf(cfg), true, `${what}.in`);
  for (const m of ffnModules(cfg)) checkBlocks(p[m.field], m, H, `${what}.${m.field}`);
  checkLinear(p.scalarHead, cfg.receiver.kvHeads, H, true, `${what}.scalarHead`);
  checkLinear(p.projOut, outDimOf(cfg), H, true, `${what}.projOut`);
  if (typeof p.gateLogit !== 'number' || !Number.isFinite(p.gateLogit)) {
    throw new InvalidInputError(`${what}.gateLogit must be a finite number, got ${p.gateLogit}`, { field: `${what}.gateLogit` });
  }
}

/**
 * The one weight check every fuser backend (reference, ONNX, WebGPU) runs at creation: projector count, layer
 * map, num_mlp_layers and every parameter shape. Config-level problems → FuserFormatError; a parameter that
 * does not match the config → ShapeMismatchError; a non-finite gate logit → InvalidInputError.
 */
export function checkFuserWeights(weights: FuserWeights): void {
  const cfg = weights.config;
  const layersProblem = numMlpLayersProblem(cfg.numMlpLayers);
  if (layersProblem) throw new FuserFormatError(`numMlpLayers ${layersProblem}`, { field: 'numMlpLayers', actual: cfg.numMlpLayers });
  if (!Array.isArray(weights.layers) || weights.layers.length !== cfg.receiver.numLayers) {
    throw new FuserFormatError(`fuser has ${weights.layers?.length} layer projectors, config.receiver.numLayers is ${cfg.receiver.numLayers}`, {
      field: 'layers', expected: cfg.receiver.numLayers, actual: weights.layers?.length,
    });
  }
  if (!Array.isArray(cfg.layerMap) || cfg.layerMap.length !== cfg.receiver.numLayers) {
    throw new FuserFormatError(`layerMap has ${cfg.layerMap?.length} entries for ${cfg.receiver.numLayers} receiver layers`, {
      field: 'layerMap', expected: cfg.receiver.numLayers, actual: cfg.layerMap?.length,
    });
  }
  cfg.layerMap.forEach((g, l) => {
    if (!Number.isInteger(g) || g < 0 || g >= cfg.sharer.numLayers) {
      throw new FuserFormatError(`layerMap[${l}] = ${g} is not a sharer layer (0..${cfg.sharer.numLayers - 1})`,
        { field: `layerMap[${l}]`, actual: g });
    }
  });
  weights.layers.forEach((layer, l) => {
    for (const p of PATHS) checkPathParams(layer[p], cfg, `layers[${l}].${p}`);
  });
}
