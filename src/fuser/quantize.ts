/**
 * int8 fuser weights (docs/fuser-format.md "int8 weights"): symmetric per-output-channel quantisation of every
 * 2-D Linear weight, `scale[o] = max_i |W[o, i]| / 127`, `q = round(W / scale)` clamped to [-127, 127].
 * Biases, norm weights and gate logits stay f32. Quantised Linears keep both forms: `quant` (int8 + scales,
 * what a GPU kernel uploads) and `weight` = q · scale as f32, so the CPU reference measures real int8 accuracy.
 */
import { FuserFormatError } from '../errors';
import type { FFNBlockParams, FuserWeights, LinearParams, ProjectorPathParams } from '../types';

export const INT8_MAX = 127;

export interface Int8Weight {
  weight: Int8Array;
  scale: Float32Array;
}

/** Rounds half away from zero (symmetric: q(-w) = -q(w); Math.round alone rounds -2.5 to -2). */
function roundAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/**
 * Quantises a `[outDim, inDim]` row-major weight. An all-zero row gets scale 0 and q 0 (no division by
 * zero); so does a row whose max/127 underflows f32. `name` names the tensor in errors.
 */
export function quantizeInt8(weight: Float32Array, outDim: number, inDim: number, name = 'weight'): Int8Weight {
  if (weight.length !== outDim * inDim) {
    throw new FuserFormatError(`cannot quantise "${name}": ${weight.length} values for [${outDim}, ${inDim}]`, {
      tensor: name, expected: [outDim, inDim], actual: weight.length,
    });
  }
  const q = new Int8Array(weight.length);
  const scale = new Float32Array(outDim);
  for (let o = 0; o < outDim; o++) {
    const base = o * inDim;
    let maxAbs = 0;
    for (let i = 0; i < inDim; i++) {
      const v = weight[base + i];
      if (!Number.isFinite(v)) {
        throw new FuserFormatError(`cannot quantise "${name}": non-finite value at index ${base + i}`, { tensor: name, index: base + i });
      }
      maxAbs = Math.max(maxAbs, Math.abs(v));
    }
    // Divide by the f32-stored scale so that q · scale is what was quantised against.
    const s = Math.fround(maxAbs / INT8_MAX);
    scale[o] = s;
    if (s === 0) continue;
    for (let i = 0; i < inDim; i++) {
      q[base + i] = Math.max(-INT8_MAX, Math.min(INT8_MAX, roundAway(weight[base + i] / s)));
    }
  }
  return { weight: q, scale };
}

/** W[o, i] = q[o, i] · scale[o], rounded to f32 once (what a GPU computes as f32(q) * scale). */
export function dequantizeInt8(q: Int8Array, scale: Float32Array, outDim: number, inDim: number): Float32Array {
  const out = new Float32Array(outDim * inDim);
  for (let o = 0; o < outDim; o++) {
    const s = scale[o];
    const base = o * inDim;
    for (let i = 0; i < inDim; i++) out[base + i] = q[base + i] * s;
  }
  return out;
}

/**
 * Validates stored int8 data (loader): q in [-127, 127] (-128 would break the symmetric range), scales
 * finite and ≥ 0. A scale of 0 is an all-zero row. Errors name the tensor and index.
 */
export function checkInt8Weight(name: string, q: Int8Array, scale: Float32Array, outDim: number, inDim: number): void {
  if (q.length !== outDim * inDim || scale.length !== outDim) {
    throw new FuserFormatError(`tensor "${name}": ${q.length} int8 values / ${scale.length} scales for [${outDim}, ${inDim}]`,
      { tensor: name });
  }
  for (let i = 0; i < q.length; i++) {
    if (q[i] < -INT8_MAX) {
      throw new FuserFormatError(`tensor "${name}" holds ${q[i]} at index ${i}; int8 weights are symmetric, in [-127, 127]`,
        { tensor: name, index: i });
    }
  }
  for (let o = 0; o < outDim; o++) {
    if (!(scale[o] >= 0) || !Number.isFinite(scale[o])) {
      throw new FuserFormatError(`tensor "${name}.scale" has ${scale[o]} at row ${o}; scales must be finite and ≥ 0`,
        { tensor: `${name}.scale`, index: o });
    }
  }
}

/** Quantised copy of one Linear (bias shared, never mutated); an already quantised Linear is returned as is. */
export function quantizeLinear(l: LinearParams, name = 'weight'): LinearParams {
  if (l.quant) return l;
  const quant = quantizeInt8(l.weight, l.outDim, l.inDim, name);
  return { ...l, weight: dequantizeInt8(quant.weight, quant.scale, l.outDim, l.inDim), quant };
}

function quantizePath(p: ProjectorPathParams, pre: string): ProjectorPathParams {
  const blocks = (bs: FFNBlockParams[], mlp: string): FFNBlockParams[] =>
    bs.map((b, i) => ({
      norm: b.norm,
      w1: quantizeLinear(b.w1, `${pre}_${mlp}.blocks.${i}.w1.weight`),
      w2: quantizeLinear(b.w2, `${pre}_${mlp}.blocks.${i}.w2.weight`),
    }));
  return {
    in: quantizeLinear(p.in, `${pre}_in.weight`),
    mlp1: blocks(p.mlp1, 'mlp1'),
    scalarMlp2: blocks(p.scalarMlp2, 'scalar_mlp2'),
    scalarHead: quantizeLinear(p.scalarHead, `${pre}_scalar_head.weight`),
    projMlp2: blocks(p.projMlp2, 'proj_mlp2'),
    projOut: quantizeLinear(p.projOut, `${pre}_proj_out.weight`),
    gateLogit: p.gateLogit,
  };
}

/**
 * Load-time int8 selection: returns new FuserWeights whose Linears carry `quant` and the dequantised f32
 * `weight`, with `config.dtype = 'int8'`. Input weights are not modified; 1-D tensors are shared.
 */
export function quantizeFuserWeights(weights: FuserWeights): FuserWeights {
  return {
    config: { ...weights.config, dtype: 'int8' },
    layers: weights.layers.map((layer, l) => ({ key: quantizePath(layer.key, `${l}.key`),
      value: quantizePath(layer.value, `${l}.value`) })),
  };
}

/** Every Linear of one path, in a fixed order (tests, packing, byte counts). */
export function pathLinears(p: ProjectorPathParams): LinearParams[] {
  const ffn = [...p.mlp1, ...p.scalarMlp2, ...p.projMlp2].flatMap((b) => [b.w1, b.w2]);
  return [p.in, ...ffn, p.scalarHead, p.projOut];
}
