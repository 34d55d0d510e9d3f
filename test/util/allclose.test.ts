/**
 * The shared numeric comparison fails where a hand-written `Math.max` / `>` loop let things through: a NaN or an
 * Inf on either side (also after a larger finite difference), a length mismatch, and one element just past the
 * tolerance; it passes on the tolerance edge itself and names the first bad index.
 */
import { describe, expect, it } from 'vitest';
import { AllCloseError, expectAllClose, expectAllCloseKV, maxAbsDiff, maxAbsDiffKV } from './allclose';
import type { KVCache } from '../../src/types';

const f32 = (xs: number[]) => new Float32Array(xs);
const tensor = (xs: number[]) => ({ data: f32(xs), heads: 1, seq: xs.length, headDim: 1 });
const cache = (xs: number[]): KVCache => [{ key: tensor(xs), value: tensor(xs) }];

describe('maxAbsDiff', () => {
  it('is the max absolute difference on finite arrays', () => {
    expect(maxAbsDiff([1, 2, 3], [1, 2.5, 2])).toBe(1);
    expect(maxAbsDiff(f32([]), f32([]))).toBe(0);
  });

  it('is NaN for a NaN or an Inf anywhere, on either side, even after a larger finite difference', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const [a, b] of [[[5, bad, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, bad]], [[bad], [bad]]]) {
        const d = maxAbsDiff(a, b);
        expect(d).toBeNaN();
        // Every comparison a test might make on it fails.
        expect(d < 1e-3 || d <= 1e-3 || d > 1e-3).toBe(false);
      }
    }
  });

  it('throws on a length mismatch', () => {
    expect(() => maxAbsDiff([1, 2], [1])).toThrow(/length 2 \(actual\) vs 1/);
  });

  it('maxAbsDiffKV poisons on a NaN in any layer and refuses a layer-count mismatch', () => {
    expect(maxAbsDiffKV(cache([1, 2]), cache([1, 3]))).toBe(1);
    expect(maxAbsDiffKV(cache([1, NaN]), cache([1, 3]))).toBeNaN();
    // A NaN in an early layer survives a larger finite difference in a later one.
    expect(maxAbsDiffKV([...cache([NaN]), ...cache([9])], [...cache([0]), ...cache([0])])).toBeNaN();
    expect(() => maxAbsDiffKV(cache([1]), [...cache([1]), ...cache([1])])).toThrow(AllCloseError);
  });
});

describe('expectAllClose', () => {
  it('passes within tolerance and returns the max abs difference', () => {
    expect(expectAllClose([1, 2, 3], [1, 2, 3.5], { atol: 0.5 })).toBe(0.5);
    expect(expectAllClose([100, 202], [100, 200], { rtol: 0.01 })).toBe(2);
  });

  it('fails on a NaN or an Inf in either array, naming the side and the index', () => {
    expect(() => expectAllClose([0, NaN], [0, 0], { atol: 1, what: 'K0' })).toThrow(/^K0: actual\[1\] = NaN is not finite$/);
    expect(() => expectAllClose([0, 0, 0], [0, 0, Infinity], { atol: 1 })).toThrow(/expected\[2\] = Infinity is not finite/);
    expect(() => expectAllClose([-Infinity], [-Infinity], { atol: Infinity })).toThrow(AllCloseError);
  });

  it('fails on a length mismatch', () => {
    expect(() => expectAllClose(f32([1, 2, 3]), f32([1, 2]), { atol: 1, what: 'V' })).toThrow(/^V: length 3 \(actual\) vs 2/);
  });

  it('holds at the tolerance edge and fails just past it, naming the first bad index and the count', () => {
    const atol = 0.25;
    const rtol = 0.5;
    // |diff| = atol + rtol·|expected| exactly (all values exact in binary): passes.
    expect(expectAllClose([1.75, 0], [1, 0.25], { atol, rtol })).toBe(0.75);
    const past = 1.75 + 2 ** -40;
    expect(() => expectAllClose([0, past, past], [0, 1, 1], { atol, rtol, what: 'gemm' })).toThrow(
      /^gemm: first mismatch at index 1: actual .*, expected 1, .* > 0\.75 .*; 2 of 3 out of tolerance/,
    );
  });

  it('with no tolerance given, demands equality', () => {
    expect(expectAllClose([1, 2], [1, 2])).toBe(0);
    expect(() => expectAllClose([1, 2], [1, 2 + 2 ** -50])).toThrow(/index 1/);
  });

  it('expectAllCloseKV names the layer and K/V of the first bad tensor', () => {
    expect(expectAllCloseKV(cache([1, 2]), cache([1, 2.1]), { atol: 0.2 })).toBeCloseTo(0.1, 6);
    expect(() => expectAllCloseKV(cache([1, 2]), cache([1, 3]),
      { atol: 0.5, what: 'fused' })).toThrow(/^fused layer 0 key: first mismatch at index 1/);
    expect(() => expectAllCloseKV(cache([1]), [...cache([1]), ...cache([1])])).toThrow(/1 layers vs 2/);
  });
});
