/**
 * The three exported flavours and how each stores and applies weights; the decoder graph itself computes in
 * float32 (residual stream, norms, RoPE, softmax) and asks this module for every weight use:
 *   fp32 (onnx/model.onnx): float32 weights, float32 KV and logits.
 *   fp16 (onnx/model_fp16.onnx): float16 weights; MatMuls run in float16 (inputs cast down, outputs cast
 *        back up), vectors are cast up; float16 past/present KV and logits, as the onnx-community fp16 exports.
 *   q8 (onnx/model_quantized.onnx): dynamic int8 MatMuls (q8.ts), int8 embedding table, float32 norms,
 *        biases, KV and logits.
 * Linear weights are stored [in, out] (MatMul's B), the embedding [vocab, hidden] (Gather's data); the tied
 * lm_head reads the embedding through Gemm(transB=1) (fp32/fp16: no second copy) or Transpose (q8).
 */
import { DataType, type DataTypeCode } from '../fuser/onnx/protobuf';
import { float32ToFloat16Bits } from '../util/half';
import type { DecoderWeight } from './decoder-weights';
import { numelOf, transposed, weightValues } from './decoder-weights';
import { bytesOf, type GraphBuilder } from './onnx-builder';
import { dynamicQuantize, int8MatMul, int8Weight } from './q8';

export const FLAVOURS = ['fp32', 'fp16', 'q8'] as const;
export type Flavour = (typeof FLAVOURS)[number];

/** File names transformers.js 4.x looks up per dtype (dtype 'q8' → suffix '_quantized'). */
export const FLAVOUR_FILE: Readonly<Record<Flavour, string>> = { fp32: 'model.onnx', fp16: 'model_fp16.onnx', q8: 'model_quantized.onnx' };

/** Element type of past/present KV and of logits. */
export const FLAVOUR_IO_TYPE: Readonly<Record<Flavour, DataTypeCode>> = { fp32: DataType.FLOAT, fp16: DataType.FLOAT16,
  q8: DataType.FLOAT };

export function toFloat16Bytes(values: Float32Array): Uint8Array {
  const h = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) h[i] = float32ToFloat16Bits(values[i]);
  return bytesOf(h);
}

export class FlavourWeights {
  private readonly casts = new Map<string, string>();
  private readonly quantized = new Map<string, [string, string, string]>();
  private embedding?: { name: string; scale?: string; zeroPoint?: string; vocab: number; hidden: number };

  constructor(private readonly b: GraphBuilder, readonly flavour: Flavour, private readonly seed: number) {}

  /** A norm weight or bias as a float32 tensor name. */
  vector(w: DecoderWeight): string {
    const values = () => weightValues(w, this.seed);
    const numel = numelOf(w.shape);
    if (this.flavour !== 'fp16') {
      return this.b.weight({ name: w.name, dims: w.shape, dataType: DataType.FLOAT, byteLength: numel * 4,
        produce: () => bytesOf(values()) });
    }
    const h = this.b.weight({ name: w.name, dims: w.shape, dataType: DataType.FLOAT16, byteLength: numel * 2,
      produce: () => toFloat16Bytes(values()) });
    return this.b.op('Cast', [h], `${w.name}.f32`, { to: { i: DataType.FLOAT } });
  }

  /** x · Wᵀ (+ bias) for an HF Linear weight [out, in]; x and the result are float32. */
  linear(x: string, w: DecoderWeight, bias: DecoderWeight | undefined, hint: string): string {
    const [outDim, inDim] = w.shape;
    const values = () => transposed(weightValues(w, this.seed), outDim, inDim);
    const dims = [inDim, outDim];
    let y: string;
    if (this.flavour === 'fp32') {
      const wt = this.b.weight({ name: `${w.name}.T`, dims, dataType: DataType.FLOAT, byteLength: outDim * inDim * 4,
        produce: () => bytesOf(values()) });
      y = this.b.op('MatMul', [x, wt], hint);
    } else if (this.flavour === 'fp16') {
      const wt = this.b.weight({ name: `${w.name}.T`, dims, dataType: DataType.FLOAT16, byteLength: outDim * inDim * 2,
        produce: () => toFloat16Bytes(values()) });
      const y16 = this.b.op('MatMul', [this.toHalf(x), wt], hint);
      y = this.b.op('Cast', [y16], `${hint}.f32`, { to: { i: DataType.FLOAT } });
    } else {
      const q = int8Weight(this.b, `${w.name}.T`, dims, values);
      y = int8MatMul(this.b, this.dynQuant(x), q, q.quantized, hint);
    }
    return bias ? this.b.op('Add', [y, this.vector(bias)], `${hint}.bias`) : y;
  }

  /** Token embeddings [B, S, hidden] (float32) of `ids`; registers the table the tied lm_head reuses. */
  embed(ids: string, w: DecoderWeight): string {
    const [vocab, hidden] = w.shape;
    const values = () => weightValues(w, this.seed);
    if (this.flavour === 'q8') {
      const q = int8Weight(this.b, w.name, w.shape, values);
      this.embedding = { name: q.quantized, scale: q.scale, zeroPoint: q.zeroPoint, vocab, hidden };
      const g = this.b.op('Gather', [q.quantized, ids], 'embed');
      return this.b.op('DequantizeLinear', [g, q.scale, q.zeroPoint], 'embed.dq');
    }
    const dataType = this.flavour === 'fp16' ? DataType.FLOAT16 : DataType.FLOAT;
    const bytes = this.flavour === 'fp16' ? 2 : 4;
    const name = this.b.weight({
      name: w.name, dims: w.shape, dataType, byteLength: vocab * hidden * bytes,
      produce: () => (this.flavour === 'fp16' ? toFloat16Bytes(values()) : bytesOf(values())),
    });
    this.embedding = { name, vocab, hidden };
    const g = this.b.op('Gather', [name, ids], 'embed');
    return this.flavour === 'fp16' ? this.b.op('Cast', [g], 'embed.f32', { to: { i: DataType.FLOAT } }) : g;
  }

  /** Tied lm_head: logits [B, S, vocab] in the flavour's I/O type from float32 hidden states [B, S, hidden]. */
  lmHead(h: string): string {
    const e = this.embedding;
    if (!e) throw new Error('lmHead() needs embed() first (tied embeddings)');
    if (this.flavour === 'q8') {
      const et = this.b.op('Transpose', [e.name], 'lm_head.wT', { perm: { ints: [1, 0] } });
      return int8MatMul(this.b, this.dynQuant(h), { quantized: e.name, scale: e.scale!, zeroPoint: e.zeroPoint! }, et, 'lm_head');
    }
    const x = this.flavour === 'fp16' ? this.toHalf(h) : h;
    const flat = this.b.op('Reshape', [x, this.b.i64([-1, e.hidden])], 'lm_head.flat');
    const logits = this.b.op('Gemm', [flat, e.name], 'lm_head', { transB: { i: 1 } });
    const lead = this.b.op('Slice', [this.b.op('Shape', [h], 'lm_head.shape'), this.b.i64([0]), this.b.i64([2])], 'lm_head.lead');
    const shape = this.b.op('Concat', [lead, this.b.i64([e.vocab])], 'lm_head.outshape', { axis: { i: 0 } });
    return this.b.op('Reshape', [logits, shape], 'lm_head.logits');
  }

  private toHalf(x: string): string {
    let h = this.casts.get(x);
    if (!h) {
      h = this.b.op('Cast', [x], `${x}.f16`, { to: { i: DataType.FLOAT16 } });
      this.casts.set(x, h);
    }
    return h;
  }

  private dynQuant(x: string): [string, string, string] {
    let q = this.quantized.get(x);
    if (!q) {
      q = dynamicQuantize(this.b, x, x);
      this.quantized.set(x, q);
    }
    return q;
  }
}
