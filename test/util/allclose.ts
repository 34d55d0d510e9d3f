/**
 * The one numeric comparison of the test suites. `maxAbsDiff` is NaN-poisoned: a non-finite value (NaN, ±Inf)
 * in either array makes the result NaN, so every `<`, `<=` and `>` check on it fails (Infinity would still pass
 * a "differs by more than" check); arrays of different lengths throw. `expectAllClose` fails on a non-finite
 * value, a length mismatch, or an element outside `atol + rtol·|expected|`, naming the first bad index.
 * No vitest import: it also runs inside browser test pages (Vite bundles it there).
 */
import type { KVCache } from '../../src/types';

export class AllCloseError extends Error {
  override name = 'AllCloseError';
}

type Numbers = ArrayLike<number>;

function checkLengths(a: Numbers, b: Numbers, what: string): void {
  if (a.length !== b.length) throw new AllCloseError(`${what}: length ${a.length} (actual) vs ${b.length} (expected)`);
}

/** max |a[i] − b[i]|; NaN when any value of either array is not finite; throws on a length mismatch. */
export function maxAbsDiff(a: Numbers, b: Numbers, what = 'maxAbsDiff'): number {
  checkLengths(a, b, what);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (!Number.isFinite(x) || !Number.isFinite(y)) return NaN;
    const d = Math.abs(x - y);
    if (d > m) m = d;
  }
  return m;
}

/** The largest `maxAbsDiff` over every layer's K and V (NaN-poisoned like it; layer counts must match). */
export function maxAbsDiffKV(a: KVCache, b: KVCache): number {
  if (a.length !== b.length) throw new AllCloseError(`maxAbsDiffKV: ${a.length} layers vs ${b.length}`);
  let m = 0;
  a.forEach((layer, l) => {
    for (const p of ['key', 'value'] as const) {
      m = Math.max(m, maxAbsDiff(layer[p].data, b[l][p].data, `layer ${l} ${p}`)); // Math.max keeps a NaN once seen
    }
  });
  return m;
}

export interface AllCloseOptions {
  /** Absolute tolerance (default 0). */
  atol?: number;
  /** Relative tolerance on |expected| (default 0). */
  rtol?: number;
  /** Names the compared quantity in the failure message. */
  what?: string;
}

/**
 * Throws AllCloseError unless both arrays have the same length, every value is finite, and every
 * |actual[i] − expected[i]| ≤ atol + rtol·|expected[i]|. Returns the max abs difference (for logging).
 */
export function expectAllClose(actual: Numbers, expected: Numbers, opts: AllCloseOptions = {}): number {
  const { atol = 0, rtol = 0, what = 'values' } = opts;
  checkLengths(actual, expected, what);
  let m = 0;
  let bad = -1;
  let badCount = 0;
  for (let i = 0; i < actual.length; i++) {
    const x = actual[i];
    const y = expected[i];
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      const side = Number.isFinite(x) ? `expected[${i}] = ${y}` : `actual[${i}] = ${x}`;
      throw new AllCloseError(`${what}: ${side} is not finite`);
    }
    const d = Math.abs(x - y);
    if (d > m) m = d;
    if (!(d <= atol + rtol * Math.abs(y))) {
      if (bad < 0) bad = i;
      badCount++;
    }
  }
  if (bad >= 0) {
    const x = actual[bad];
    const y = expected[bad];
    const tol = atol + rtol * Math.abs(y);
    throw new AllCloseError(
      `${what}: first mismatch at index ${bad}: actual ${x}, expected ${y}, |diff| ${Math.abs(x - y)} > ${tol} (atol ${atol}, rtol ${rtol}); ` +
        `${badCount} of ${actual.length} out of tolerance, max |diff| ${m}`,
    );
  }
  return m;
}

/** `expectAllClose` on every layer's K and V of two caches (same layer count and shapes). */
export function expectAllCloseKV(actual: KVCache, expected: KVCache, opts: AllCloseOptions = {}): number {
  const what = opts.what ?? 'cache';
  if (actual.length !== expected.length) throw new AllCloseError(`${what}: ${actual.length} layers vs ${expected.length}`);
  let m = 0;
  actual.forEach((layer, l) => {
    for (const p of ['key', 'value'] as const) {
      m = Math.max(m, expectAllClose(layer[p].data, expected[l][p].data, { ...opts, what: `${what} layer ${l} ${p}` }));
    }
  });
  return m;
}
