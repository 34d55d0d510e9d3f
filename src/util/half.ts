/**
 * IEEE half (f16) and bfloat16 bit conversions. Hand-written because they are a few lines and every
 * npm alternative is either a full tensor library or a Float16Array polyfill we would not otherwise need.
 * Rounding is round-to-nearest-even, matching PyTorch's `.half()` / `.bfloat16()`.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bfloat16BitsToFloat32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

export function float32ToBFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x007fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff; // keep NaN a NaN
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  return f32BitsToF16Bits(u32[0]);
}

/** IEEE single bits → half bits, round-to-nearest-even (overflow → ±Inf, NaN stays a quiet NaN). */
function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → ±Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000;
    const shift = 14 - e;
    const halfMant = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    const round = rem > halfway || (rem === halfway && (halfMant & 1)) ? 1 : 0;
    return sign | (halfMant + round);
  }
  const halfMant = mant >>> 13;
  const rem = mant & 0x1fff;
  let out = sign | (e << 10) | halfMant;
  if (rem > 0x1000 || (rem === 0x1000 && (halfMant & 1))) out += 1; // carry may bump the exponent: still correct
  return out;
}

/** Rounds every element through the given storage dtype (what a save/load cycle would do). */
export function roundThrough(data: Float32Array, dtype: 'float32' | 'float16' | 'bfloat16'): Float32Array {
  if (dtype === 'float32') return data.slice();
  const out = new Float32Array(data.length);
  if (dtype === 'float16') for (let i = 0; i < data.length; i++) out[i] = float16BitsToFloat32(float32ToFloat16Bits(data[i]));
  else for (let i = 0; i < data.length; i++) out[i] = bfloat16BitsToFloat32(float32ToBFloat16Bits(data[i]));
  return out;
}

let halfTable: Float32Array | undefined;

/** Every half value widened (65,536 entries, 256 KiB): one lookup per element instead of the arithmetic. */
function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfTable[i] = float16BitsToFloat32(i);
  }
  return halfTable;
}

/** Half bits → f32 values (exact: every half is a float32). `out` may be given (same length). */
export function float16ArrayToFloat32(bits: Uint16Array, out = new Float32Array(bits.length)): Float32Array {
  const t = halfToFloatTable();
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]];
  return out;
}

/** f32 values → half bits, each rounded once to nearest-even. `out` may be given (same length). */
export function float32ArrayToFloat16(values: Float32Array, out = new Uint16Array(values.length)): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < words.length; i++) out[i] = f32BitsToF16Bits(words[i]);
  return out;
}
