/** src/fuser/math.ts against libm values (Python math.erf / math.erfc) and definitions on tiny inputs. */
import { describe, expect, it } from 'vitest';
import { erf, erfc, geluErf, linear, rmsNorm, sigmoid } from '../../src/fuser/math';
import { expectAllClose } from '../util/allclose';

// Reference values printed by CPython's math.erf / math.erfc (C libm), gelu = 0.5·x·erfc(-x/√2) in the same.
const ERF: [number, number][] = [
  [0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527],
  [2.5, 0.999593047982555], [3, 0.9999779095030014], [4, 0.9999999845827421], [-1.5, -0.9661051464753108],
];
const ERFC: [number, number][] = [
  [2.5, 0.0004069520174449589], [3, 2.2090496998585438e-5], [5, 1.5374597944280351e-12], [10, 2.088487583762545e-45],
  [-3, 1.9999779095030015],
];
const GELU: [number, number][] = [
  [1, 0.8413447460685429], [-1, -0.15865525393145707], [3, 2.99595030590511], [-3, -0.004049694094890287],
  [-8, -4.9767684594174555e-15], [0.25, 0.14967658142073093],
];

describe('fuser math', () => {
  it('erf is accurate to 1e-14 and odd', () => {
    expectAllClose(ERF.map(([x]) => erf(x)), ERF.map(([, want]) => want), { atol: 1e-14, what: 'erf' });
    for (const [x] of ERF) expect(erf(-x)).toBe(-erf(x));
    expect(erf(0)).toBe(0);
    expect(erf(40)).toBe(1);
    expect(Number.isNaN(erf(NaN))).toBe(true);
  });

  it('erfc keeps relative precision in the tail', () => {
    expectAllClose(ERFC.map(([x]) => erfc(x)), ERFC.map(([, want]) => want), { rtol: 1e-12, what: 'erfc' });
  });

  it('geluErf matches the exact-erf GELU, including far negative inputs', () => {
    expectAllClose(GELU.map(([x]) => geluErf(x)), GELU.map(([, want]) => want), { rtol: 1e-13, atol: 1e-16, what: 'geluErf' });
    expect(geluErf(0)).toBe(0);
  });

  it('sigmoid', () => {
    expect(sigmoid(0)).toBe(0.5);
    expect(sigmoid(Math.log(3))).toBeCloseTo(0.75, 15);
    expect(sigmoid(-1000)).toBe(0);
  });

  it('rmsNorm normalises each row by its RMS and applies the gain', () => {
    // row 0: [3, 4] → rms = sqrt(12.5); row 1: [0, 0] → stays 0 thanks to eps
    const y = rmsNorm(new Float32Array([3, 4, 0, 0]), new Float32Array([1, 2]), 2, 1e-6);
    const rms = Math.sqrt(12.5 + 1e-6);
    expect(y[0]).toBeCloseTo(3 / rms, 6);
    expect(y[1]).toBeCloseTo((2 * 4) / rms, 6);
    expect([y[2], y[3]]).toEqual([0, 0]);
  });

  it('linear uses PyTorch [out, in] weights and adds the bias', () => {
    // x = [[1, 2, 3]], W = [[1, 0, -1], [2, 2, 2]], b = [0.5, -1] → [1 - 3 + 0.5, 2 + 4 + 6 - 1]
    const y = linear(new Float32Array([1, 2, 3]), new Float32Array([1, 0, -1, 2, 2, 2]), new Float32Array([0.5, -1]), 1, 3, 2);
    expect(Array.from(y)).toEqual([-1.5, 11]);
    const noBias = linear(new Float32Array([1, 2, 3, 0, 0, 1]), new Float32Array([1, 0, -1, 2, 2, 2]), undefined, 2, 3, 2);
    expect(Array.from(noBias)).toEqual([-2, 12, -1, 2]);
  });
});
