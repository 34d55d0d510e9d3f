/**
 * Minimal protobuf writer for the ONNX messages the fuser graph and the stand-in decoders need (ModelProto,
 * GraphProto, NodeProto, TensorProto incl. external data, ValueInfoProto, AttributeProto), field numbers from
 * the ONNX spec (onnx.proto3).
 *
 * Hand-written on purpose: there is no maintained small npm package that writes ONNX protobuf without
 * pulling a full protobuf runtime plus the ONNX schema, and the graph here uses a fixed, tiny subset of
 * the format (write-only, no unknown fields, no maps, no oneofs beyond the ones below).
 */

/** Wire types of the protobuf encoding. */
const VARINT = 0;
const FIXED32 = 5;
const LEN = 2;

/**
 * Bytes produced only when the message is written: lets a multi-GB model stream to disk one tensor at a
 * time (`pieces()`) instead of being assembled in memory. `produce()` must return exactly `length` bytes.
 */
export interface LazyBytes {
  length: number;
  produce(): Uint8Array;
}

type Chunk = Uint8Array | LazyBytes;

/** Appends protobuf fields to a list of byte chunks (large raw tensors are kept as their own chunk). */
export class ProtoWriter {
  private readonly chunks: Chunk[] = [];
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

  /** A length-delimited field whose bytes are produced at write time (see LazyBytes). */
  lazyBytes(field: number, data: LazyBytes): this {
    this.tag(field, LEN);
    this.varint(data.length);
    this.flush();
    this.chunks.push(data);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  /** An embedded message; its chunks are adopted, not copied, so lazy tensors stay lazy. */
  message(field: number, w: ProtoWriter): this {
    w.flush();
    this.tag(field, LEN);
    this.varint(w.byteLength);
    this.flush();
    this.chunks.push(...w.chunks);
    return this;
  }

  /** Encoded size so far, lazy chunks included (nothing is produced). */
  get byteLength(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0) + this.scratch.length;
  }

  /** The encoded message in order, one chunk at a time (lazy chunks are produced here, each once). */
  *pieces(): Generator<Uint8Array> {
    this.flush();
    for (const c of this.chunks) {
      if (c instanceof Uint8Array) {
        yield c;
        continue;
      }
      const bytes = c.produce();
      if (bytes.length !== c.length) throw new RangeError(`lazy chunk produced ${bytes.length} bytes, declared ${c.length}`);
      yield bytes;
    }
  }

  /** Packed repeated int64 (proto3 default for repeated scalars). */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.byteLength);
    let o = 0;
    for (const c of this.pieces()) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** AttributeProto.AttributeType values used here. */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, INTS: 7 } as const;

export type AttrValue = { f: number } | { i: number } | { ints: number[] } | { s: string } | { t: InitializerSpec };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attrs?: Record<string, AttrValue>;
}

/** A constant tensor given as values. */
export interface ValuesInitializerSpec {
  name: string;
  dims: number[];
  /** f32 values (written as little-endian raw_data), int64 values, or float16 bits (Uint16Array). */
  data: Float32Array | BigInt64Array | Uint16Array;
}

/** A constant tensor given as little-endian raw bytes of `dataType` (possibly produced lazily at write time). */
export interface RawInitializerSpec {
  name: string;
  dims: number[];
  dataType: DataTypeCode;
  raw: Uint8Array | LazyBytes;
}

/** A constant tensor stored in an external data file next to the model (ONNX external data). */
export interface ExternalInitializerSpec {
  name: string;
  dims: number[];
  dataType: DataTypeCode;
  /** File name relative to the model file, byte offset and length inside it. */
  external: { location: string; offset: number; length: number };
}

export type InitializerSpec = ValuesInitializerSpec | RawInitializerSpec | ExternalInitializerSpec;

/** A tensor value: dims are numbers or symbolic names (dim_param); element type default FLOAT. */
export interface ValueInfoSpec {
  name: string;
  dims: (number | string)[];
  elemType?: DataTypeCode;
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
  // AttributeProto: s=4, t=5
  const w = new ProtoWriter().string(1, name);
  if ('f' in v) w.float(2, v.f).int(20, AttrType.FLOAT);
  else if ('i' in v) w.int(3, v.i).int(20, AttrType.INT);
  else if ('s' in v) w.string(4, v.s).int(20, AttrType.STRING);
  else if ('t' in v) w.message(5, tensor(v.t)).int(20, AttrType.TENSOR);
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
function rawLittleEndian(data: ValuesInitializerSpec['data']): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const raw = new Uint8Array(data.byteLength);
  const dv = new DataView(raw.buffer);
  if (data instanceof Float32Array) data.forEach((v: number, i: number) => dv.setFloat32(i * 4, v, true));
  else if (data instanceof Uint16Array) data.forEach((v: number, i: number) => dv.setUint16(i * 2, v, true));
  else data.forEach((v: bigint, i: number) => dv.setBigInt64(i * 8, v, true));
  return raw;
}

function tensor(t: InitializerSpec): ProtoWriter {
  // TensorProto: dims=1, data_type=2, name=8, raw_data=9 (little-endian), external_data=13, data_location=14
  const w = new ProtoWriter().packedInts(1, t.dims);
  if ('external' in t) {
    w.int(2, t.dataType).string(8, t.name);
    const entry = (k: string, v: string) => new ProtoWriter().string(1, k).string(2, v); // StringStringEntryProto
    w.message(13, entry('location', t.external.location));
    w.message(13, entry('offset', String(t.external.offset)));
    w.message(13, entry('length', String(t.external.length)));
    return w.int(14, 1); // DataLocation.EXTERNAL
  }
  if ('raw' in t) {
    w.int(2, t.dataType).string(8, t.name);
    return t.raw instanceof Uint8Array ? w.bytes(9, t.raw) : w.lazyBytes(9, t.raw);
  }
  w.int(2, t.data instanceof Float32Array ? DataType.FLOAT : t.data instanceof Uint16Array ? DataType.FLOAT16 : DataType.INT64);
  w.string(8, t.name);
  return w.bytes(9, rawLittleEndian(t.data));
}

function valueInfo(v: ValueInfoSpec): ProtoWriter {
  // TensorShapeProto.Dimension: dim_value=1, dim_param=2; TensorShapeProto: dim=1
  const shape = new ProtoWriter();
  for (const d of v.dims) shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  // TypeProto.Tensor: elem_type=1, shape=2; TypeProto: tensor_type=1; ValueInfoProto: name=1, type=2
  const tensorType = new ProtoWriter().int(1, v.elemType ?? DataType.FLOAT).message(2, shape);
  return new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
}

export interface ModelOptions {
  opset?: number;
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  /** ModelProto.metadata_props (string key/value pairs). */
  metadata?: Record<string, string>;
}

/**
 * A ModelProto (default ir_version 8, default-domain opset 17) holding `g`, as a writer: `finish()` gives
 * the bytes, `pieces()` streams them (lazy raw tensors are produced one at a time).
 */
export function modelWriter(g: GraphSpec, o: ModelOptions = {}): ProtoWriter {
  // GraphProto: node=1, name=2, initializer=5, input=11, output=12
  const graph = new ProtoWriter();
  for (const n of g.nodes) graph.message(1, node(n));
  graph.string(2, g.name);
  for (const t of g.initializers) graph.message(5, tensor(t));
  for (const i of g.inputs) graph.message(11, valueInfo(i));
  for (const out of g.outputs) graph.message(12, valueInfo(out));
  // OperatorSetIdProto: domain=1 (empty = ai.onnx), version=2
  const opsetId = new ProtoWriter().string(1, '').int(2, o.opset ?? 17);
  // ModelProto: ir_version=1, producer_name=2, producer_version=3, doc_string=6, graph=7, opset_import=8, metadata_props=14
  const m = new ProtoWriter().int(1, o.irVersion ?? 8).string(2, o.producerName ?? 'c2c-web');
  if (o.producerVersion) m.string(3, o.producerVersion);
  if (o.docString) m.string(6, o.docString);
  m.message(7, graph).message(8, opsetId);
  for (const [k, v] of Object.entries(o.metadata ?? {})) m.message(14, new ProtoWriter().string(1, k).string(2, v));
  return m;
}

/** Serialises a ModelProto (ir_version 8, default-domain opset `opset`) holding `g`. */
export function encodeModel(g: GraphSpec, opset = 17, irVersion = 8): Uint8Array {
  return modelWriter(g, { opset, irVersion }).finish();
}
