/**
 * A generic protobuf wire-format reader/writer, just enough to edit an existing ONNX model (rename values, change
 * an input's element type, append nodes) without a protobuf runtime or the ONNX schema: a message is parsed into
 * its fields in order, unknown fields are kept as raw bytes, and re-encoding writes them back unchanged.
 * Test tooling only (it builds the float16-KV test models); the runtime never reads ONNX.
 */

export interface WireField {
  field: number;
  /** 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
  wire: 0 | 1 | 2 | 5;
  /** varint value, or the raw bytes of fixed64/fixed32/length-delimited fields. */
  value: bigint | Uint8Array;
}

function readVarint(b: Uint8Array, at: number): [bigint, number] {
  let x = 0n;
  let shift = 0n;
  for (;;) {
    if (at >= b.length) throw new RangeError('truncated varint');
    const byte = b[at++];
    x |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return [x, at];
    shift += 7n;
  }
}

function writeVarint(out: number[], v: bigint): void {
  let x = BigInt.asUintN(64, v);
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
}

export function parseMessage(b: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let at = 0;
  while (at < b.length) {
    const [tag, next] = readVarint(b, at);
    at = next;
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n) as WireField['wire'];
    if (wire === 0) {
      const [v, n] = readVarint(b, at);
      fields.push({ field, wire, value: v });
      at = n;
    } else if (wire === 2) {
      const [len, n] = readVarint(b, at);
      const end = n + Number(len);
      if (end > b.length) throw new RangeError(`field ${field}: length ${len} past the end`);
      fields.push({ field, wire, value: b.subarray(n, end) });
      at = end;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      fields.push({ field, wire, value: b.subarray(at, at + size) });
      at += size;
    } else throw new RangeError(`unsupported wire type ${wire} (field ${field})`);
  }
  return fields;
}

export function encodeMessage(fields: WireField[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let head: number[] = [];
  const flush = () => {
    if (head.length) parts.push(Uint8Array.from(head));
    head = [];
  };
  for (const f of fields) {
    writeVarint(head, BigInt((f.field << 3) | f.wire));
    if (f.wire === 0) writeVarint(head, f.value as bigint);
    else {
      const bytes = f.value as Uint8Array;
      if (f.wire === 2) writeVarint(head, BigInt(bytes.length));
      flush();
      parts.push(bytes);
    }
  }
  flush();
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export const str = (field: number, s: string): WireField => ({ field, wire: 2, value: utf8.encode(s) });
export const msg = (field: number, fields: WireField[]): WireField => ({ field, wire: 2, value: encodeMessage(fields) });
export const int = (field: number, v: number | bigint): WireField => ({ field, wire: 0, value: BigInt(v) });
/** A packed repeated varint field (proto3's default for repeated int64). */
export function packed(field: number, values: readonly (number | bigint)[]): WireField {
  const bytes: number[] = [];
  for (const v of values) writeVarint(bytes, BigInt(v));
  return { field, wire: 2, value: Uint8Array.from(bytes) };
}
export const text = (f: WireField): string => fromUtf8.decode(f.value as Uint8Array);
export const sub = (f: WireField): WireField[] => parseMessage(f.value as Uint8Array);
