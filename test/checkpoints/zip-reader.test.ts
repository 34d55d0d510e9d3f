/**
 * The hand-written zip reader against archives from another implementation (Python's zipfile): plain and
 * zip64 records (64-bit sizes and offsets in extra fields, zip64 end records), stored and deflated entries,
 * and the same bytes out; stored entries are views of the archive.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readZip } from '../../src/checkpoints/zip';
import { CheckpointFormatError } from '../../src/errors';

const PYTHON = '/usr/bin/python3';

/** A zip written by Python: entries a.bin (stored, 300 bytes), b.bin (deflated, 5000 bytes), with zip64 forced or not. */
function pythonZip(zip64: boolean): Uint8Array {
  const script = [
    'import io, sys, zipfile',
    'if sys.argv[1] == "1":',
    '    zipfile.ZIP64_LIMIT = 1',
    '    zipfile.ZIP_FILECOUNT_LIMIT = 1',
    'b = io.BytesIO()',
    'with zipfile.ZipFile(b, "w") as z:',
    '    z.writestr(zipfile.ZipInfo("arc/a.bin"), bytes(i % 251 for i in range(300)), compress_type=zipfile.ZIP_STORED)',
    '    z.writestr(zipfile.ZipInfo("arc/b.bin"), bytes((i * 7) % 13 for i in range(5000)), compress_type=zipfile.ZIP_DEFLATED)',
    'sys.stdout.buffer.write(b.getvalue())',
  ].join('\n');
  const r = spawnSync(PYTHON, ['-c', script, zip64 ? '1' : '0']);
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return new Uint8Array(r.stdout);
}

describe.skipIf(!existsSync(PYTHON))('zip reader vs Python zipfile', () => {
  it.each([
    ['plain records', false],
    ['zip64 records (64-bit sizes and offsets, zip64 end record)', true],
  ] as const)('%s: every entry byte-exact, stored ones as views', (_label, zip64) => {
    const zip = pythonZip(zip64);
    const sig = new DataView(zip.buffer).getUint32(zip.length - 22 - 20 - 56, true);
    if (zip64) expect(sig).toBe(0x06064b50); // the archive really has a zip64 end record
    const entries = readZip(zip, 'py.zip');
    expect([...entries.keys()]).toEqual(['arc/a.bin', 'arc/b.bin']);
    expect(Array.from(entries.get('arc/a.bin')!)).toEqual(Array.from({ length: 300 }, (_, i) => i % 251));
    expect(Array.from(entries.get('arc/b.bin')!)).toEqual(Array.from({ length: 5000 }, (_, i) => (i * 7) % 13));
    expect(entries.get('arc/a.bin')!.buffer === zip.buffer, 'a view of the archive').toBe(true);
  });

  it('a zip64 size field pointing past the extra data is refused typed', () => {
    const zip = pythonZip(true).slice();
    // Shrink the first central record's extra field length: its zip64 sizes are gone.
    const dv = new DataView(zip.buffer);
    const cd = zip.findIndex((_, i) => dv.getUint32(i, true) === 0x02014b50);
    dv.setUint16(cd + 30, 0, true);
    expect(() => readZip(zip, 'cut64.zip')).toThrow(CheckpointFormatError);
  });
});
