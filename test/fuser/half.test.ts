import { describe, expect, it } from 'vitest';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBFloat16Bits, float32ToFloat16Bits } from '../../src/util/half';

describe('half and bfloat16 conversions', () => {
  it('match IEEE binary16 on known values', () => {
    const known: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [0.5, 0x3800],
      [2 ** -24, 0x0001], [2 ** -14, 0x0400], [1 / 3, 0x3555], [Infinity, 0x7c00], [1e6, 0x7c00],
    ];
    for (const [v, bits] of known) {
      expect(float32ToFloat16Bits(v)).toBe(bits);
      if (Number.isFinite(v) && v <= 65504) expect(float16BitsToFloat32(bits)).toBeCloseTo(v, 3);
    }
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN)))).toBe(true);
  });

  it('round half to even in f16 and bf16', () => {
    // 1 + 2^-11 lies exactly between 1 and 1 + 2^-10: ties to the even mantissa (1.0).
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    // bf16 keeps 7 mantissa bits: 1 + 2^-8 ties to 1.0, 1 + 3·2^-8 to 1 + 2^-6.
    expect(float32ToBFloat16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(float32ToBFloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(bfloat16BitsToFloat32(0x3f82)).toBe(1 + 2 ** -6);
  });

  it('every finite f16 bit pattern survives f16 → f32 → f16', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue;
      expect(float32ToFloat16Bits(float16BitsToFloat32(bits))).toBe(bits);
    }
  });
});
