/**
 * Seeded random weights: every tensor gets its own stream (seed mixed with the tensor's name), so each
 * flavour and the PyTorch reference export regenerate identical values without holding them.
 *
 * The stream is the mulberry32 sequence of src/util/seeded-random.ts (test/standins/random.test.ts checks
 * they agree), written as one inlined loop because a closure call per element halves the speed at billions
 * of elements. Each 32-bit draw gives an Irwin–Hall(4) value (sum of its four bytes): bell-shaped, bounded
 * at ±3.45σ, mean 0, standard deviation 1 after scaling.
 */

/** Standard deviation of the sum of four independent uniform bytes: sqrt(4·(256² − 1)/12). */
const BYTE_SUM_STD = Math.sqrt((4 * (256 * 256 - 1)) / 12);

/** The tensor's own stream seed: FNV-1a of its name, combined with the seed through murmur3's finalizer. */
export function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h ^= Math.imul(seed >>> 0, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Fills `out` with mean + std·z, z normal-ish (see above), from the stream seeded by `seed`. */
export function fillNormalish(out: Float32Array, seed: number, std: number, mean = 0): Float32Array {
  let a = seed | 0;
  const k = std / BYTE_SUM_STD;
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    t ^= t >>> 14;
    out[i] = mean + ((t & 255) + ((t >>> 8) & 255) + ((t >>> 16) & 255) + ((t >>> 24) & 255) - 510) * k;
  }
  return out;
}
