/**
 * Seeded random fuser weights at a realistic scale (PyTorch-default-like Linear init, unit norm weights),
 * for tests, fuzzing and benchmarks. Not a training initialiser.
 */
import type { FFNBlockParams, FuserConfig, FuserWeights, LinearParams, ModelKVDims, ProjectorPathParams } from '../types';
import { terminalLayerMap } from './layer-map';
import { ffnModules, inDimOf, outDimOf, type FfnModule } from './shapes';
import { seededRandom } from '../util/seeded-random';

export { seededRandom };

export interface RandomFuserOptions {
  receiver?: ModelKVDims;
  sharer?: ModelKVDims;
  hiddenDim?: number;
  intermediateDim?: number;
  numMlpLayers?: number;
  layerMap?: number[];
  /** Gate logit per [layer][path]; default +0.5 (open). */
  gateLogit?: (layer: number, path: 'key' | 'value') => number;
}

export function randomFuserConfig(o: RandomFuserOptions = {}): FuserConfig {
  const receiver = o.receiver ?? { numLayers: 3, kvHeads: 2, headDim: 8 };
  const sharer = o.sharer ?? { numLayers: 2, kvHeads: 2, headDim: 4 };
  return {
    receiver,
    sharer,
    hiddenDim: o.hiddenDim ?? 16,
    intermediateDim: o.intermediateDim ?? 16,
    numMlpLayers: o.numMlpLayers ?? 3,
    rmsNormEps: 1e-6,
    scalarTemperature: 1,
    dtype: 'float32',
    layerMap: o.layerMap ?? terminalLayerMap(receiver.numLayers, sharer.numLayers),
  };
}

export function randomFuserWeights(seed: number, o: RandomFuserOptions = {}): FuserWeights {
  const rand = seededRandom(seed);
  const cfg = randomFuserConfig(o);
  const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * bound);
  const linear = (outDim: number, inDim: number, bias: boolean): LinearParams => ({
    weight: uniform(outDim * inDim, 1 / Math.sqrt(inDim)),
    bias: bias ? uniform(outDim, 1 / Math.sqrt(inDim)) : undefined,
    outDim,
    inDim,
  });
  const H = cfg.hiddenDim;
  const blocks = (m: FfnModule): FFNBlockParams[] =>
    Array.from({ length: m.blocks }, () => ({ norm: Float32Array.from({ length: H }, () => 0.8 + 0.4 * rand()),
      w1: linear(m.inner, H, false), w2: linear(H, m.inner, false) }));
  const [mlp1, scalarMlp2, projMlp2] = ffnModules(cfg);
  const inDim = inDimOf(cfg);
  const outDim = outDimOf(cfg);
  const path = (l: number, p: 'key' | 'value'): ProjectorPathParams => ({
    in: linear(H, inDim + outDim, true),
    mlp1: blocks(mlp1),
    scalarMlp2: blocks(scalarMlp2),
    scalarHead: linear(cfg.receiver.kvHeads, H, true),
    projMlp2: blocks(projMlp2),
    projOut: linear(outDim, H, true),
    gateLogit: o.gateLogit ? o.gateLogit(l, p) : 0.5,
  });
  return { config: cfg, layers: Array.from({ length: cfg.receiver.numLayers },
    (_, l) => ({ key: path(l, 'key'), value: path(l, 'value') })) };
}
