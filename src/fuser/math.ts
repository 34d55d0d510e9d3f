/**
 * Scalar and row-wise math of the C2C projector on the CPU, shared by the reference fuser and by the WebGPU
 * kernel tests (sub-step checks). Activations are Float32Array (what the GPU stores); every sum is
 * accumulated in JS numbers (f64) and rounded once when stored.
 */

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2 / sqrt(pi)
const ONE_OVER_SQRT_PI = 0.5641895835477563; // 1 / sqrt(pi)
const SQRT1_2 = Math.SQRT1_2;
/** Below this |x| the power series is used, above it the continued fraction (both ~1e-15 there). */
const SERIES_LIMIT = 2.5;

/**
 * erfc(x) for x >= SERIES_LIMIT: Laplace continued fraction
 * erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated bottom-up.
 * 80 levels reach full double precision for x >= 2.5.
 */
function erfcLarge(x: number): number {
  let f = x;
  for (let k = 80; k >= 1; k--) f = x + k / 2 / f;
  return (Math.exp(-x * x) * ONE_OVER_SQRT_PI) / f;
}

/**
 * erf(x) for |x| < SERIES_LIMIT: erf(x) = 2/√π · e^{-x²} · Σ_n 2ⁿ x^{2n+1} / (1·3·…·(2n+1)).
 * All terms share the sign of x, so there is no cancellation (unlike the Maclaurin series).
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) <= 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/** Error function to ~1e-15 absolute (Abramowitz–Stegun 7.1.26, ~1e-7, is not enough for 1e-5 fused KV). */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < SERIES_LIMIT) return erfSeries(x);
  const c = erfcLarge(ax);
  return x > 0 ? 1 - c : c - 1;
}

/** Complementary error function, accurate in the tail (x large) where 1 - erf(x) would lose everything. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= SERIES_LIMIT) return erfcLarge(x);
  if (x <= -SERIES_LIMIT) return 2 - erfcLarge(-x);
  return 1 - erfSeries(x);
}

/** Exact (erf) GELU: 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(-x/√2), the latter keeps precision for x ≪ 0. */
export function geluErf(x: number): number {
  return 0.5 * x * erfc(-x * SQRT1_2);
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/**
 * Row-wise RMSNorm over `rows` rows of width `dim`: y = x / sqrt(mean(x²) + eps) · weight.
 * Returns a new array unless `out` is given (may alias x).
 */
export function rmsNorm(x: Float32Array, weight: Float32Array, rows: number, eps: number, out?: Float32Array): Float32Array {
  const dim = weight.length;
  const y = out ?? new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[o + i] = x[o + i] * inv * weight[i];
  }
  return y;
}

/**
 * y[r, o] = Σ_i x[r, i] · W[o, i] + b[o] for `rows` rows; W is `[outDim, inDim]` row-major (PyTorch layout).
 */
export function linear(
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array | undefined,
  rows: number,
  inDim: number,
  outDim: number,
): Float32Array {
  const y = new Float32Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    const xo = r * inDim;
    for (let o = 0; o < outDim; o++) {
      const wo = o * inDim;
      let acc = bias ? bias[o] : 0;
      for (let i = 0; i < inDim; i++) acc += x[xo + i] * weight[wo + i];
      y[r * outDim + o] = acc;
    }
  }
  return y;
}

/** In-place exact GELU over an array. */
export function geluInPlace(x: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = geluErf(x[i]);
  return x;
}
