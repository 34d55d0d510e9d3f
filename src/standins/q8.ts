/**
 * The q8 flavour's dynamic int8 MatMul, in the node pattern onnxruntime's `quantize_dynamic` (QOperator
 * format, weight_type QInt8, per-tensor, reduce_range off) produces for `Y = X · W`:
 *
 *   X ─DynamicQuantizeLinear→ (Xq uint8, Xs, Xzp) ─MatMulInteger(Xq, Wq int8, Xzp, Wzp)→ int32 ─Cast→ f32
 *   Y = that · (Xs · Ws)
 *
 * Weights are symmetric int8: scale = max|W| / 127, zero point 0, q = round-half-even(W / scale) in
 * [-127, 127], all in float32 as numpy computes them there. An embedding table is quantized the same way and read with
 * Gather + DequantizeLinear.
 */
import { DataType } from '../fuser/onnx/protobuf';
import { bytesOf, type GraphBuilder } from './onnx-builder';

export interface Int8Tensor {
  q: Int8Array;
  scale: number;
}

/** Round half to even (numpy's `round`, which onnxruntime's quantizer uses). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function quantizeSymmetricInt8(values: Float32Array): Int8Tensor {
  let absmax = 0;
  for (let i = 0; i < values.length; i++) absmax = Math.max(absmax, Math.abs(values[i]));
  const scale = Math.fround(absmax > 0 ? absmax / 127 : 1);
  const q = new Int8Array(values.length);
  // The quotient is rounded to float32 first, as numpy computes it in onnxruntime's quantizer.
  for (let i = 0; i < values.length; i++) q[i] = Math.max(-127, Math.min(127, roundHalfEven(Math.fround(values[i] / scale))));
  return { q, scale };
}

/** Names of a quantized weight's three initializers (onnxruntime's naming). */
export interface Int8WeightNames {
  quantized: string;
  scale: string;
  zeroPoint: string;
}

/**
 * Registers an int8 weight whose values come from `values()`. Its scale is only known once the values
 * exist, so the scale initializer is registered right after the quantized one and reads the scale the
 * quantized one computed: writers produce weights once each, in registration order (onnx-file.ts).
 */
export function int8Weight(b: GraphBuilder, name: string, dims: number[], values: () => Float32Array): Int8WeightNames {
  const numel = dims.reduce((n, d) => n * d, 1);
  let scale: number | undefined;
  const quantized = b.weight({
    name: `${name}_quantized`,
    dims,
    dataType: DataType.INT8,
    byteLength: numel,
    produce: () => {
      const t = quantizeSymmetricInt8(values());
      scale = t.scale;
      return bytesOf(t.q);
    },
  });
  const scaleName = b.weight({
    name: `${name}_scale`,
    dims: [],
    dataType: DataType.FLOAT,
    byteLength: 4,
    produce: () => {
      if (scale === undefined) throw new Error(`${name}_scale was produced before ${name}_quantized`);
      return bytesOf(Float32Array.of(scale));
    },
  });
  const zeroPoint = b.weight({ name: `${name}_zero_point`, dims: [], dataType: DataType.INT8, byteLength: 1,
    produce: () => new Uint8Array(1) });
  return { quantized, scale: scaleName, zeroPoint };
}

/** Dynamically quantizes an f32 activation (uint8, per tensor); returns [Xq, Xscale, Xzp]. */
export function dynamicQuantize(b: GraphBuilder, x: string, hint: string): [string, string, string] {
  const [q, s, zp] = b.opN('DynamicQuantizeLinear', [x], `${hint}.dq`, 3);
  return [q, s, zp];
}

/** `X · W` through MatMulInteger; `xq` from dynamicQuantize (shared by every MatMul reading the same X). */
export function int8MatMul(b: GraphBuilder, xq: [string, string, string], w: Int8WeightNames, wq: string, hint: string): string {
  const acc = b.op('MatMulInteger', [xq[0], wq, xq[2], w.zeroPoint], `${hint}.mmi`);
  const f = b.op('Cast', [acc], `${hint}.cast`, { to: { i: DataType.FLOAT } });
  const scale = b.op('Mul', [xq[1], w.scale], `${hint}.scale`);
  return b.op('Mul', [f, scale], `${hint}.out`);
}
