/**
 * Memory of the torch archive reader: tensors are views of their storage and each storage is widened once,
 * so a hostile file with 10,000 keys viewing one 64 MB storage costs the widened storage (128 MB), not
 * 10,000 copies; and stored zip entries are views of the file's bytes (no second copy of the archive).
 * Counted in ArrayBuffer bytes (process.memoryUsage().arrayBuffers), after a full GC.
 */
import { describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { readTorchStateDict } from '../../src/checkpoints/torch-archive';
import { readZip } from '../../src/checkpoints/zip';
import { stateDictPickleOf, storedZip } from './official-writer';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const arrayBuffers = () => {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
};

const MB = 1 << 20;
const STORAGE_ELEMENTS = 32 * MB; // bf16: 64 MB of storage bytes

/** One bf16 storage '0' of 64 MB and `keys` tensors over it (full views, or views of numel - 7 at offsets 0..6). */
function hostileArchive(keys: number, shifted: boolean): Uint8Array {
  const n = shifted ? STORAGE_ELEMENTS - 7 : STORAGE_ELEMENTS;
  const tensors = Array.from({ length: keys }, (_, i) => ({
    name: `t${i}`, shape: [n], numel: STORAGE_ELEMENTS, storage: '0', offset: shifted ? i % 7 : 0,
  }));
  const pkl = stateDictPickleOf(tensors, 'bfloat16');
  const storage = new Uint8Array(2 * STORAGE_ELEMENTS);
  return storedZip([['archive/data.pkl', pkl], ['archive/byteorder', new TextEncoder().encode('little')], ['archive/data/0', storage]]);
}

describe('torch archive memory', () => {
  it.each([
    ['full views', false],
    ['shifted views (storage offsets 0..6)', true],
  ] as const)('10,000 keys sharing one 64 MB bf16 storage (%s) cost one widened storage', (_label, shifted) => {
    const archive = hostileArchive(10_000, shifted);
    const before = arrayBuffers();
    const tensors = readTorchStateDict(archive, 'hostile.pt');
    const grown = arrayBuffers() - before;
    expect(tensors.size).toBe(10_000);
    const first = tensors.get('t0')!.data;
    const last = tensors.get('t9999')!.data;
    expect(last.length).toBe(shifted ? STORAGE_ELEMENTS - 7 : STORAGE_ELEMENTS);
    // The widened storage (128 MB) and nothing per key; 10,000 copies would be 1.28 TB.
    expect(grown).toBeLessThan(4 * STORAGE_ELEMENTS + 8 * MB);
    expect(grown).toBeGreaterThanOrEqual(4 * STORAGE_ELEMENTS);
    expect(last.buffer === first.buffer, 'one storage behind every key').toBe(true); // (no diff of 128 MB buffers on failure)
    console.log(`[archive memory] ${_label}: +${(grown / MB).toFixed(1)} MiB ArrayBuffers for a ${(archive.length / MB).toFixed(1)} MiB archive`);
  });

  it('stored zip entries are views of the archive (no copy)', () => {
    const data = new Uint8Array(16 * MB).fill(7);
    const zip = storedZip([['a/data.pkl', new Uint8Array([0x80, 2, 0x7d, 0x2e])], ['a/data/0', data]]);
    const before = arrayBuffers();
    const entries = readZip(zip, 'z.pt');
    expect(arrayBuffers() - before).toBeLessThan(MB);
    expect(entries.get('a/data/0')!.buffer === zip.buffer, 'a view of the archive').toBe(true);
    expect(entries.get('a/data/0')!.length).toBe(16 * MB);
  });
});
