/**
 * Strict safetensors reader and writer. Hand-written because the npm `safetensors` package is an unmaintained
 * 0.0.1 stub; the format is small (u64 LE header length, JSON header, flat byte buffer) and a strict reader
 * is mostly validation, which is the point: every malformed file must end in a SafetensorsFormatError.
 */
import { SafetensorsFormatError } from '../errors';
import { bfloat16BitsToFloat32, float16BitsToFloat32 } from '../util/half';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** View into the file's buffer, little-endian. */
  data: Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** Headers above this are refused before parsing (the reference implementation uses 100 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const MAX_RANK = 8;

export function parseSafetensors(bytes: Uint8Array, fileName = 'safetensors file'): SafetensorsFile {
  const fail = (msg: string, details: Record<string, unknown> = {}): never => {
    throw new SafetensorsFormatError(`${fileName}: ${msg}`, { file: fileName, ...details });
  };
  if (!(bytes instanceof Uint8Array)) fail('expected bytes (Uint8Array)');
  if (bytes.byteLength < 8) fail(`file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (headerLen > BigInt(bytes.byteLength - 8)) {
    fail(`header length ${headerLen} runs past the end of the file (${bytes.byteLength} bytes): truncated?`, { field: 'header_length' });
  }
  const hLen = Number(headerLen);
  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + hLen));
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`, { field: 'header' });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header must be a JSON object', { field: 'header' });

  const dataStart = 8 + hLen;
  const dataLen = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; begin: number; end: number }[] = [];
  const tensors = new Map<string, SafetensorsTensor>();

  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('__metadata__ must be an object of strings',
        { field: '__metadata__' });
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} must be a string`, { field: `__metadata__.${k}` });
        metadata[k] = v as string;
      }
      continue;
    }
    const t = fieldsOf(raw, name, fail);
    const dtype = t.dtype;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) fail(`tensor "${name}": unknown dtype ${JSON.stringify(dtype)}`,
      { tensor: name, field: 'dtype' });
    const shape = t.shape;
    if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor "${name}": shape must be an array of at most ${MAX_RANK} non-negative integers, got ${JSON.stringify(shape)}`,
        { tensor: name, field: 'shape' });
    }
    const offsets = t.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor "${name}": data_offsets must be [begin, end] non-negative integers`, { tensor: name, field: 'data_offsets' });
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLen) {
      fail(`tensor "${name}": data_offsets [${begin}, ${end}] fall outside the ${dataLen}-byte data buffer`,
        { tensor: name, field: 'data_offsets' });
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const expectedBytes = numel * DTYPE_BYTES[dtype as SafetensorsDType];
    if (!Number.isSafeInteger(expectedBytes) || expectedBytes !== end - begin) {
      fail(`tensor "${name}": shape ${JSON.stringify(shape)} × ${dtype} needs ${expectedBytes} bytes but data_offsets span ${end - begin}`,
        { tensor: name, field: 'data_offsets' });
    }
    entries.push({ name, begin, end });
    tensors.set(name, { name, dtype: dtype as SafetensorsDType, shape: (shape as number[]).slice(),
      data: bytes.subarray(dataStart + begin, dataStart + end) });
  }

  // The byte buffer must be covered exactly: no overlaps and no holes (as the reference implementation requires).
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of entries) {
    if (e.begin < cursor) fail(`tensor "${e.name}" overlaps the previous tensor's bytes`, { tensor: e.name, field: 'data_offsets' });
    if (e.begin > cursor) fail(`unused bytes [${cursor}, ${e.begin}) before tensor "${e.name}"`, { tensor: e.name, field: 'data_offsets' });
    cursor = e.end;
  }
  if (cursor !== dataLen) fail(`data buffer has ${dataLen - cursor} trailing bytes not owned by any tensor`, { field: 'data_offsets' });
  return { tensors, metadata };
}

function fieldsOf(raw: unknown, name: string, fail: (m: string, d?: Record<string, unknown>) => never): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`tensor "${name}": entry must be an object`, { tensor: name });
  return raw as Record<string, unknown>;
}

/** Widens an F32/F16/BF16/F64 tensor to a fresh Float32Array (safe for unaligned views). */
export function tensorToFloat32(t: SafetensorsTensor): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  switch (t.dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = float16BitsToFloat32(dv.getUint16(2 * i, true));
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) out[i] = bfloat16BitsToFloat32(dv.getUint16(2 * i, true));
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      break;
    default:
      throw new SafetensorsFormatError(`tensor "${t.name}": dtype ${t.dtype} is not a float type`, { tensor: t.name, field: 'dtype' });
  }
  return out;
}

/** Reads an integer tensor (I32/I64/I16/I8/U8) into a plain number array. */
export function tensorToNumbers(t: SafetensorsTensor): number[] {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    switch (t.dtype) {
      case 'I64': out[i] = Number(dv.getBigInt64(8 * i, true)); break;
      case 'I32': out[i] = dv.getInt32(4 * i, true); break;
      case 'I16': out[i] = dv.getInt16(2 * i, true); break;
      case 'I8': out[i] = dv.getInt8(i); break;
      case 'U8': case 'BOOL': out[i] = dv.getUint8(i); break;
      default: return Array.from(tensorToFloat32(t));
    }
  }
  return out;
}

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  data: ArrayBufferView;
}

/** Writes tensors in the given order; the header is space-padded to a multiple of 8 bytes. */
export function writeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const size = numel * DTYPE_BYTES[t.dtype];
    if (size !== t.data.byteLength) {
      throw new SafetensorsFormatError(`tensor "${t.name}": ${t.data.byteLength} bytes given for shape ${JSON.stringify(t.shape)} × ${t.dtype} (${size})`, { tensor: t.name });
    }
    if (t.name in header) throw new SafetensorsFormatError(`duplicate tensor name "${t.name}"`, { tensor: t.name });
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}
