/**
 * Size-guarded zip reading for `torch.save` archives. Declared sizes, entry count and compression method are
 * checked from the central directory before anything is inflated; stored entries (what torch.save writes)
 * come back as views of the archive's bytes, never copies, so reading a projector file allocates nothing per
 * entry. Hand-written because fflate's unzipSync copies every stored entry (a second copy of each 34 MB
 * file); fflate still inflates deflated entries, into a buffer of exactly the declared size.
 */
import { inflateSync } from 'fflate';
import { CheckpointFormatError } from '../errors';

export interface ZipLimits {
  /** Largest single entry, uncompressed bytes. */
  maxEntryBytes: number;
  /** Sum of all uncompressed entries. */
  maxTotalBytes: number;
  maxEntries: number;
}

/** A 0.6B-pair projector file is ~34 MB; the largest released pair (Qwen3-8B) ~60 MB per layer. */
export const DEFAULT_ZIP_LIMITS: ZipLimits = {
  maxEntryBytes: 1 << 30,
  maxTotalBytes: 1 << 30,
  maxEntries: 10_000,
};

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const U32_MAX = 0xffffffff;

class GuardError extends Error {}
/** Structural damage: reported as "not a readable zip archive". */
class BrokenError extends Error {}

interface Entry {
  name: string;
  method: number;
  compressed: number;
  size: number;
  localOffset: number;
}

/**
 * Entry name → bytes. Stored entries are views of `bytes` (valid as long as it is); deflated ones are inflated
 * into their own buffer. Every entry has exactly its declared size.
 */
export function readZip(bytes: Uint8Array, fileName: string, limits: Partial<ZipLimits> = {}): Map<string, Uint8Array> {
  const lim = { ...DEFAULT_ZIP_LIMITS, ...limits };
  try {
    const entries = centralDirectory(bytes, lim);
    const out = new Map<string, Uint8Array>();
    for (const e of entries) out.set(e.name, entryData(bytes, e, fileName));
    return out;
  } catch (e) {
    if (e instanceof CheckpointFormatError) throw e;
    if (e instanceof GuardError) throw new CheckpointFormatError(`${fileName}: ${e.message}`, { field: fileName });
    throw new CheckpointFormatError(`${fileName}: not a readable zip archive (${(e as Error).message})`, { field: fileName }, { cause: e });
  }
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function need(bytes: Uint8Array, at: number, n: number, what: string): void {
  if (!(at >= 0 && at + n <= bytes.length)) throw new BrokenError(`${what} lies outside the ${bytes.length}-byte file`);
}

/** End of central directory (zip64-aware): where the directory is and how many records it holds. */
function endRecord(bytes: Uint8Array): { count: number; offset: number; size: number } {
  const dv = view(bytes);
  const last = bytes.length - 22;
  let at = -1;
  for (let p = last; p >= 0 && p >= last - 0xffff; p--) {
    if (dv.getUint32(p, true) === SIG_EOCD && p + 22 + dv.getUint16(p + 20, true) === bytes.length) {
      at = p;
      break;
    }
  }
  if (at < 0) throw new BrokenError('no end-of-central-directory record');
  let count = dv.getUint16(at + 10, true);
  let size = dv.getUint32(at + 12, true);
  let offset = dv.getUint32(at + 16, true);
  if (count === 0xffff || size === U32_MAX || offset === U32_MAX) {
    const loc = at - 20;
    need(bytes, loc, 20, 'zip64 locator');
    if (dv.getUint32(loc, true) !== SIG_EOCD64_LOCATOR) throw new BrokenError('zip64 sizes without a zip64 locator');
    const rec = safe(dv.getBigUint64(loc + 8, true), 'zip64 record offset');
    need(bytes, rec, 56, 'zip64 end record');
    if (dv.getUint32(rec, true) !== SIG_EOCD64) throw new BrokenError('bad zip64 end record');
    count = safe(dv.getBigUint64(rec + 32, true), 'entry count');
    size = safe(dv.getBigUint64(rec + 40, true), 'directory size');
    offset = safe(dv.getBigUint64(rec + 48, true), 'directory offset');
  }
  need(bytes, offset, size, 'central directory');
  return { count, offset, size };
}

function safe(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BrokenError(`${what} ${v} is out of range`);
  return Number(v);
}

function centralDirectory(bytes: Uint8Array, lim: ZipLimits): Entry[] {
  const dv = view(bytes);
  const { count, offset, size } = endRecord(bytes);
  if (count > lim.maxEntries) throw new GuardError(`more than ${lim.maxEntries} entries`);
  const names = new Set<string>();
  const entries: Entry[] = [];
  const decoder = new TextDecoder();
  let total = 0;
  let p = offset;
  for (let i = 0; i < count; i++) {
    need(bytes, p, 46, 'central directory record');
    if (p + 46 > offset + size || dv.getUint32(p, true) !== SIG_CENTRAL) throw new BrokenError(`bad central directory record ${i}`);
    const method = dv.getUint16(p + 10, true);
    let compressed = dv.getUint32(p + 20, true);
    let originalSize = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let localOffset = dv.getUint32(p + 42, true);
    need(bytes, p + 46, nameLen + extraLen + commentLen, 'central directory record');
    const name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    if (originalSize === U32_MAX || compressed === U32_MAX || localOffset === U32_MAX) {
      // zip64 extra field (id 1): the 64-bit values, in this order, of those fields that are 0xFFFFFFFF.
      const z = zip64Extra(bytes, p + 46 + nameLen, extraLen);
      let q = 0;
      const next = (): number => {
        if (q + 8 > z.length) throw new BrokenError(`entry '${name}' lacks its zip64 sizes`);
        const v = safe(view(z).getBigUint64(q, true), 'zip64 field');
        q += 8;
        return v;
      };
      if (originalSize === U32_MAX) originalSize = next();
      if (compressed === U32_MAX) compressed = next();
      if (localOffset === U32_MAX) localOffset = next();
    }
    if (names.has(name)) throw new GuardError(`duplicate entry '${name}'`);
    if (method !== 0 && method !== 8) throw new GuardError(`entry '${name}' uses compression method ${method}`);
    if (originalSize > lim.maxEntryBytes) {
      throw new GuardError(`entry '${name}' declares ${originalSize} bytes, over the ${lim.maxEntryBytes}-byte limit`);
    }
    if (method === 0 && compressed !== originalSize) throw new GuardError(`stored entry '${name}' has mismatched sizes`);
    total += originalSize;
    if (total > lim.maxTotalBytes) throw new GuardError(`entries declare more than ${lim.maxTotalBytes} bytes in total`);
    // Stored data cannot be larger than the archive holding it: reject absurd declarations before reading.
    if (compressed > bytes.length) throw new GuardError(`entry '${name}' declares ${compressed} bytes in a ${bytes.length}-byte file`);
    // Deflate expands at most ~1032:1, so a larger claim is a lie meant to make us allocate.
    if (method === 8 && originalSize > compressed * 1032 + 1024) throw new GuardError(`entry '${name}' claims an impossible inflate ratio`);
    names.add(name);
    entries.push({ name, method, compressed, size: originalSize, localOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

function zip64Extra(bytes: Uint8Array, at: number, len: number): Uint8Array {
  const dv = view(bytes);
  for (let p = at; p + 4 <= at + len; ) {
    const id = dv.getUint16(p, true);
    const n = dv.getUint16(p + 2, true);
    if (p + 4 + n > at + len) break;
    if (id === 1) return bytes.subarray(p + 4, p + 4 + n);
    p += 4 + n;
  }
  return new Uint8Array(0);
}

function entryData(bytes: Uint8Array, e: Entry, fileName: string): Uint8Array {
  const dv = view(bytes);
  const truncated = (have: number): never => {
    throw new CheckpointFormatError(`${fileName}: entry '${e.name}' is truncated (${have} of ${e.size} bytes)`,
      { field: fileName, tensor: e.name });
  };
  need(bytes, e.localOffset, 30, `local header of '${e.name}'`);
  if (dv.getUint32(e.localOffset, true) !== SIG_LOCAL) throw new BrokenError(`entry '${e.name}' has no local header at ${e.localOffset}`);
  const start = e.localOffset + 30 + dv.getUint16(e.localOffset + 26, true) + dv.getUint16(e.localOffset + 28, true);
  if (start + e.compressed > bytes.length) truncated(Math.max(0, bytes.length - start));
  const raw = bytes.subarray(start, start + e.compressed);
  if (e.method === 0) return raw;
  let data: Uint8Array;
  try {
    data = inflateSync(raw, { out: new Uint8Array(e.size) });
  } catch (err) {
    throw new BrokenError(`entry '${e.name}' does not inflate: ${(err as Error).message}`);
  }
  if (data.length !== e.size) truncated(data.length);
  return data;
}
