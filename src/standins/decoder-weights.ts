/**
 * The weights of a stand-in decoder under their Hugging Face names and shapes (`model.layers.{i}.self_attn.
 * q_proj.weight` [out, in], …), how each is initialised, and its values (regenerated on demand from the seed).
 * Linear and embedding weights: normal-ish, std 0.02 (HF `initializer_range`); biases std 0.02; RMSNorm
 * weights 1 ± 0.02. Tied embeddings: there is no `lm_head.weight`.
 */
import type { ModelArch } from '../presets';
import type { FamilyTraits } from './families';
import { fillNormalish, tensorSeed } from './random';

export type WeightRole = 'embedding' | 'linear' | 'bias' | 'norm';

export interface DecoderWeight {
  name: string;
  /** HF shape; Linear weights are [out, in]. */
  shape: number[];
  role: WeightRole;
}

export const WEIGHT_STD = 0.02;

/** Every weight of the decoder, in HF state-dict order. */
export function decoderWeights(a: ModelArch, t: FamilyTraits): DecoderWeight[] {
  const qDim = a.numHeads * a.headDim;
  const kvDim = a.kvHeads * a.headDim;
  const out: DecoderWeight[] = [{ name: 'model.embed_tokens.weight', shape: [a.vocabSize, a.hiddenSize], role: 'embedding' }];
  for (let i = 0; i < a.numLayers; i++) {
    const p = `model.layers.${i}`;
    const lin = (name: string, o: number, n: number, bias: boolean) => {
      out.push({ name: `${p}.${name}.weight`, shape: [o, n], role: 'linear' });
      if (bias) out.push({ name: `${p}.${name}.bias`, shape: [o], role: 'bias' });
    };
    lin('self_attn.q_proj', qDim, a.hiddenSize, t.qkvBias);
    lin('self_attn.k_proj', kvDim, a.hiddenSize, t.qkvBias);
    lin('self_attn.v_proj', kvDim, a.hiddenSize, t.qkvBias);
    lin('self_attn.o_proj', a.hiddenSize, qDim, false);
    if (t.qkNorm) {
      out.push({ name: `${p}.self_attn.q_norm.weight`, shape: [a.headDim], role: 'norm' });
      out.push({ name: `${p}.self_attn.k_norm.weight`, shape: [a.headDim], role: 'norm' });
    }
    lin('mlp.gate_proj', a.intermediateSize, a.hiddenSize, false);
    lin('mlp.up_proj', a.intermediateSize, a.hiddenSize, false);
    lin('mlp.down_proj', a.hiddenSize, a.intermediateSize, false);
    out.push({ name: `${p}.input_layernorm.weight`, shape: [a.hiddenSize], role: 'norm' });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [a.hiddenSize], role: 'norm' });
  }
  out.push({ name: 'model.norm.weight', shape: [a.hiddenSize], role: 'norm' });
  return out;
}

export const numelOf = (shape: readonly number[]): number => shape.reduce((n, d) => n * d, 1);

/** The weight's values in HF layout (row-major over `shape`), from the weight's own seeded stream. */
export function weightValues(w: DecoderWeight, seed: number): Float32Array {
  const out = new Float32Array(numelOf(w.shape));
  return fillNormalish(out, tensorSeed(seed, w.name), WEIGHT_STD, w.role === 'norm' ? 1 : 0);
}

/** [out, in] row-major → [in, out] row-major (MatMul's B layout, so the graph needs no runtime Transpose). */
export function transposed(values: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) t[c * rows + r] = values[base + c];
  }
  return t;
}
