/**
 * Bytes of a fuser's weights as stored for the GPU, counted from its config alone (nothing downloaded):
 * - f32 / f16: every Linear weight, bias and norm weight in that dtype, each tensor padded to 4 elements
 *   (the vec4 alignment of src/fuser/webgpu/weights.ts);
 * - int8: Linear weights packed 4 per u32 along `in` (rows padded to a multiple of 4 bytes), plus one f32
 *   scale per output row, with biases and norm weights kept f32 (they are < 1 % of the parameters).
 * Gate logits are uniforms, not buffer contents. Every path counts (gates are unknown from the config).
 */
import { pathTensorShapes, type FuserDims } from './shapes';

export type GpuWeightDType = 'f32' | 'f16' | 'int8';

export interface FuserWeightBytes {
  dtype: GpuWeightDType;
  /** Linear weight matrices (int8: the packed u32 words). */
  linearBytes: number;
  /** int8 per-output-channel scales (0 for f32/f16). */
  scaleBytes: number;
  /** Biases and RMSNorm weights. */
  vectorBytes: number;
  totalBytes: number;
}

const pad4 = (n: number) => Math.ceil(n / 4) * 4;

/** The Linear shapes `[out, in]` and vector lengths of one path (K or V) of one projector (0-d gate excluded). */
export function pathLinearAndVectorShapes(cfg: FuserDims): { linears: [number, number][]; vectors: number[] } {
  const linears: [number, number][] = [];
  const vectors: number[] = [];
  for (const { shape } of pathTensorShapes(cfg)) {
    if (shape.length === 2) linears.push([shape[0], shape[1]]);
    else if (shape.length === 1) vectors.push(shape[0]);
  }
  return { linears, vectors };
}

export function fuserGpuWeightBytes(cfg: FuserDims, dtype: GpuWeightDType): FuserWeightBytes {
  const { linears, vectors } = pathLinearAndVectorShapes(cfg);
  const paths = 2 * cfg.receiver.numLayers;
  const elem = dtype === 'f16' ? 2 : 4;
  let linearBytes = 0;
  let scaleBytes = 0;
  for (const [out, inDim] of linears) {
    if (dtype === 'int8') {
      linearBytes += out * pad4(inDim);
      scaleBytes += pad4(out) * 4;
    } else {
      linearBytes += pad4(out * inDim) * elem;
    }
  }
  const vectorBytes = vectors.reduce((s, n) => s + pad4(n) * (dtype === 'f16' ? 2 : 4), 0);
  const r = { linearBytes: linearBytes * paths, scaleBytes: scaleBytes * paths, vectorBytes: vectorBytes * paths };
  return { dtype, ...r, totalBytes: r.linearBytes + r.scaleBytes + r.vectorBytes };
}
