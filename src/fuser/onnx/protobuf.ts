/**
 * Minimal protobuf writer for the ONNX messages the fuser graph needs (ModelProto, GraphProto, NodeProto,
 * TensorProto, ValueInfoProto, AttributeProto), field numbers from the ONNX spec (onnx.proto3).
 *
 * Hand-written on purpose: there is no maintained small npm package that writes ONNX protobuf without
 * pulling a full protobuf runtime plus the ONNX schema, and the graph here uses a fixed, tiny subset of
 * the format (write-only, no unknown fields, no maps, no oneofs beyond the ones below).
 */

/** Wire types of the protobuf encoding. */
const VARINT = 0;
const FIXED32 = 5;
const LEN = 2;

/** Appends protobuf fields to a list of byte chunks (large raw tensors are kept as their own chunk). */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private scratch: number[] = [];

  private flush(): void {
    if (this.scratch.length) {
      this.chunks.push(Uint8Array.from(this.scratch));
      this.scratch = [];
    }
  }

  /** Unsigned or non-negative varint; negative int64 values are written as 10-byte two's complement. */
  private varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    if (x < 0x80n) {
      this.scratch.push(Number(x));
      return;
    }
    while (x >= 0x80n) {
      this.scratch.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.scratch.push(Number(x));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): this {
    this.tag(field, VARINT);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.scratch.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, LEN);
    this.varint(data.length);
    this.flush();
    this.chunks.push(data);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, w: ProtoWriter): this {
    return this.bytes(field, w.finish());
  }

  /** Packed repeated int64 (proto3 default for repeated scalars). */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    this.flush();
    const total = this.chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7, FLOAT16: 10 } as const;

/** AttributeProto.AttributeType values used here. */
const AttrType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

export type AttrValue = { f: number } | { i: number } | { ints: number[] };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attrs?: Record<string, AttrValue>;
}

export interface InitializerSpec {
  name: string;
  dims: number[];
  /** f32 values (written as little-endian raw_data), int64 values, or float16 bits (Uint16Array). */
  data: Float32Array | BigInt64Array | Uint16Array;
}

/** A tensor value: dims are numbers or symbolic names (dim_param); element type float32 unless given. */
export interface ValueInfoSpec {
  name: string;
  dims: (number | string)[];
  elemType?: 'float32' | 'float16';
}

export interface GraphSpec {
  name: string;
  nodes: NodeSpec[];
  initializers: InitializerSpec[];
  inputs: ValueInfoSpec[];
  outputs: ValueInfoSpec[];
}

function attribute(name: string, v: AttrValue): ProtoWriter {
  // AttributeProto: name=1, f=2, i=3, ints=8, type=20
  const w = new ProtoWriter().string(1, name);
  if ('f' in v) w.float(2, v.f).int(20, AttrType.FLOAT);
  else if ('i' in v) w.int(3, v.i).int(20, AttrType.INT);
  else w.packedInts(8, v.ints).int(20, AttrType.INTS);
  return w;
}

function node(n: NodeSpec): ProtoWriter {
  // NodeProto: input=1, output=2, name=3, op_type=4, attribute=5
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.op);
  for (const [k, v] of Object.entries(n.attrs ?? {})) w.message(5, attribute(k, v));
  return w;
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** The tensor's little-endian bytes: a view of its own memory on little-endian hosts (no copy), else a swapped copy. */
function rawLittleEndian(data: InitializerSpec['data']): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const raw = new Uint8Array(data.byteLength);
  const dv = new DataView(raw.buffer);
  if (data instanceof Float32Array) data.forEach((v, i) => dv.setFloat32(i * 4, v, true));
  else if (data instanceof Uint16Array) data.forEach((v, i) => dv.setUint16(i * 2, v, true));
  else data.forEach((v, i) => dv.setBigInt64(i * 8, v, true));
  return raw;
}

function tensor(t: InitializerSpec): ProtoWriter {
  // TensorProto: dims=1, data_type=2, name=8, raw_data=9 (little-endian)
  const w = new ProtoWriter().packedInts(1, t.dims);
  w.int(2, t.data instanceof Float32Array ? DataType.FLOAT : t.data instanceof Uint16Array ? DataType.FLOAT16 : DataType.INT64);
  w.string(8, t.name);
  return w.bytes(9, rawLittleEndian(t.data));
}

function valueInfo(v: ValueInfoSpec): ProtoWriter {
  // TensorShapeProto.Dimension: dim_value=1, dim_param=2; TensorShapeProto: dim=1
  const shape = new ProtoWriter();
  for (const d of v.dims) shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  // TypeProto.Tensor: elem_type=1, shape=2; TypeProto: tensor_type=1; ValueInfoProto: name=1, type=2
  const tensorType = new ProtoWriter().int(1, v.elemType === 'float16' ? DataType.FLOAT16 : DataType.FLOAT).message(2, shape);
  return new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
}

/** Serialises a ModelProto (ir_version 8, default-domain opset `opset`) holding `g`. */
export function encodeModel(g: GraphSpec, opset = 17, irVersion = 8): Uint8Array {
  // GraphProto: node=1, name=2, initializer=5, input=11, output=12
  const graph = new ProtoWriter();
  for (const n of g.nodes) graph.message(1, node(n));
  graph.string(2, g.name);
  for (const t of g.initializers) graph.message(5, tensor(t));
  for (const i of g.inputs) graph.message(11, valueInfo(i));
  for (const o of g.outputs) graph.message(12, valueInfo(o));
  // OperatorSetIdProto: domain=1 (empty = ai.onnx), version=2
  const opsetId = new ProtoWriter().string(1, '').int(2, opset);
  // ModelProto: ir_version=1, producer_name=2, graph=7, opset_import=8
  return new ProtoWriter().int(1, irVersion).string(2, 'c2c-web').message(7, graph).message(8, opsetId).finish();
}
