/**
 * A small ONNX graph builder for the stand-in decoders: nodes with fresh output names, shared small
 * constants (inline), and weight tensors as lazy sources (their bytes are produced only when the model or
 * its external data file is written, one tensor at a time).
 */
import { DataType, type AttrValue, type DataTypeCode, type NodeSpec, type ValuesInitializerSpec,
  type ValueInfoSpec } from '../fuser/onnx/protobuf';

/** A weight tensor whose little-endian bytes are produced on demand. */
export interface TensorSource {
  name: string;
  dims: number[];
  dataType: DataTypeCode;
  byteLength: number;
  produce(): Uint8Array;
}

export const ELEMENT_BYTES: Readonly<Record<number, number>> = {
  [DataType.FLOAT]: 4, [DataType.FLOAT16]: 2, [DataType.INT8]: 1, [DataType.UINT8]: 1, [DataType.INT32]: 4, [DataType.INT64]: 8,
    [DataType.BOOL]: 1,
};

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('stand-in generation assumes a little-endian platform');

/** The bytes of a typed array as they lie in memory (little-endian here), without a copy. */
export const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly constants: ValuesInitializerSpec[] = [];
  readonly weights: TensorSource[] = [];
  private readonly constNames = new Map<string, string>();
  private readonly weightNames = new Set<string>();
  private n = 0;

  /** One node with one output; returns the output name. */
  op(op: string, inputs: string[], hint: string, attrs?: Record<string, AttrValue>, output?: string): string {
    return this.opN(op, inputs, hint, 1, attrs, output ? [output] : undefined)[0];
  }

  /** One node with `count` outputs (Split, DynamicQuantizeLinear). */
  opN(op: string, inputs: string[], hint: string, count: number, attrs?: Record<string, AttrValue>, outputs?: string[]): string[] {
    const id = this.n++;
    const outs = outputs ?? Array.from({ length: count }, (_, i) => `${hint}_${id}${count > 1 ? `_${i}` : ''}`);
    this.nodes.push({ op, inputs, outputs: outs, name: `${hint}/${op}_${id}`, attrs });
    return outs;
  }

  /** A shared f32 scalar constant. */
  f32(v: number): string {
    return this.constant(`f:${v}`, () => ({ dims: [], data: Float32Array.of(v) }));
  }

  /** A shared f32 constant vector. */
  f32s(name: string, values: Float32Array): string {
    return this.constant(`F:${name}`, () => ({ dims: [values.length], data: values }), name);
  }

  /** A shared int64 constant: a vector, or a scalar when `scalar` is set. */
  i64(values: number[], scalar = false): string {
    if (scalar && values.length !== 1) throw new RangeError('an int64 scalar holds one value');
    return this.constant(`i:${scalar ? 's' : 'v'}:${values.join(',')}`,
      () => ({ dims: scalar ? [] : [values.length], data: BigInt64Array.from(values.map(BigInt)) }));
  }

  /** Registers a weight tensor (once per name) and returns its name. */
  weight(src: TensorSource): string {
    if (this.weightNames.has(src.name)) throw new RangeError(`weight ${src.name} is registered twice`);
    const expect = src.dims.reduce((n, d) => n * d, 1) * ELEMENT_BYTES[src.dataType];
    if (expect !== src.byteLength) throw new RangeError(`weight ${src.name}: ${src.byteLength} bytes declared for dims [${src.dims}] (${expect})`);
    this.weightNames.add(src.name);
    this.weights.push(src);
    return src.name;
  }

  private constant(key: string, make: () => Omit<ValuesInitializerSpec, 'name'>, preferred?: string): string {
    let name = this.constNames.get(key);
    if (!name) {
      name = preferred ?? `const_${this.constNames.size}`;
      this.constants.push({ name, ...make() });
      this.constNames.set(key, name);
    }
    return name;
  }
}

export type { ValueInfoSpec };
