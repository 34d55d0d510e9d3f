/**
 * A zip archive of stored (uncompressed) entries, laid out as PyTorch's writer does: every entry's data
 * starts on a 64-byte boundary, padded through an extra field with id "FB" filled with 'Z'. Sizes and CRC-32
 * are in the local headers (no data descriptors); no zip64, so each entry and the archive stay under 4 GiB.
 * Hand-written: fflate can write stored entries but not align their data.
 */
import { crc32 } from 'node:zlib';

export interface ZipEntry {
  name: string;
  data: Uint8Array;
}

const ALIGN = 64;
const LOCAL = 30;
const CENTRAL = 46;
const END = 22;
const FB_HEADER = 4;

export function zipStored(entries: ZipEntry[]): Uint8Array {
  const names = entries.map((e) => new TextEncoder().encode(e.name));
  const layout: { offset: number; pad: number; crc: number }[] = [];
  let pos = 0;
  entries.forEach((e, i) => {
    const headerEnd = pos + LOCAL + names[i].length + FB_HEADER;
    const pad = (ALIGN - (headerEnd % ALIGN)) % ALIGN;
    layout.push({ offset: pos, pad, crc: crc32(e.data) >>> 0 });
    pos = headerEnd + pad + e.data.length;
  });
  const centralStart = pos;
  const centralSize = names.reduce((n, b) => n + CENTRAL + b.length, 0);
  const total = centralStart + centralSize + END;
  if (total >= 2 ** 32 || entries.length >= 65535) throw new RangeError('zip archive too large for the non-zip64 format');
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  entries.forEach((e, i) => {
    const { offset, pad, crc } = layout[i];
    const n = names[i];
    dv.setUint32(offset, 0x04034b50, true);
    dv.setUint16(offset + 4, 20, true); // version needed: 2.0
    dv.setUint16(offset + 6, 0x0800, true); // UTF-8 names
    dv.setUint16(offset + 8, 0, true); // stored
    dv.setUint32(offset + 10, 0, true); // time/date
    dv.setUint32(offset + 14, crc, true);
    dv.setUint32(offset + 18, e.data.length, true);
    dv.setUint32(offset + 22, e.data.length, true);
    dv.setUint16(offset + 26, n.length, true);
    dv.setUint16(offset + 28, FB_HEADER + pad, true);
    out.set(n, offset + LOCAL);
    const extra = offset + LOCAL + n.length;
    dv.setUint16(extra, 0x4246, true); // "FB"
    dv.setUint16(extra + 2, pad, true);
    out.fill(0x5a, extra + FB_HEADER, extra + FB_HEADER + pad); // 'Z'
    out.set(e.data, extra + FB_HEADER + pad);
  });
  let c = centralStart;
  entries.forEach((e, i) => {
    const { offset, crc } = layout[i];
    const n = names[i];
    dv.setUint32(c, 0x02014b50, true);
    dv.setUint16(c + 4, 20, true); // version made by
    dv.setUint16(c + 6, 20, true);
    dv.setUint16(c + 8, 0x0800, true);
    dv.setUint16(c + 10, 0, true);
    dv.setUint32(c + 12, 0, true);
    dv.setUint32(c + 16, crc, true);
    dv.setUint32(c + 20, e.data.length, true);
    dv.setUint32(c + 24, e.data.length, true);
    dv.setUint16(c + 28, n.length, true);
    // extra 0, comment 0, disk 0, internal attrs 0, external attrs 0
    dv.setUint32(c + 42, offset, true);
    out.set(n, c + CENTRAL);
    c += CENTRAL + n.length;
  });
  dv.setUint32(c, 0x06054b50, true);
  dv.setUint16(c + 8, entries.length, true);
  dv.setUint16(c + 10, entries.length, true);
  dv.setUint32(c + 12, centralSize, true);
  dv.setUint32(c + 16, centralStart, true);
  return out;
}
