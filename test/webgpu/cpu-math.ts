/**
 * Plain-loop CPU math for the kernel tests, written independently of the shaders (double precision,
 * erf by its Taylor series rather than the shader's rational approximation).
 */
export function erf(x: number): number {
  if (Math.abs(x) > 5) return Math.sign(x);
  // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const t = term / (2 * n + 1);
    sum += t;
    if (Math.abs(t) < 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

export const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** y[m, n] = Σ_k a[m, k] w[n, k] + b[n]. */
export function linear(a: Float32Array, M: number, K: number, w: Float32Array, N: number, b?: Float32Array): Float32Array {
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = b ? b[n] : 0;
      for (let k = 0; k < K; k++) s += a[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  return y;
}

export function rmsNorm(x: Float32Array, M: number, H: number, g: Float32Array, eps: number): Float32Array {
  const y = new Float32Array(M * H);
  for (let m = 0; m < M; m++) {
    let s = 0;
    for (let k = 0; k < H; k++) s += x[m * H + k] ** 2;
    const inv = 1 / Math.sqrt(s / H + eps);
    for (let k = 0; k < H; k++) y[m * H + k] = x[m * H + k] * inv * g[k];
  }
  return y;
}

export function invRms(x: Float32Array, M: number, H: number, eps: number): Float32Array {
  const y = new Float32Array(M);
  for (let m = 0; m < M; m++) {
    let s = 0;
    for (let k = 0; k < H; k++) s += x[m * H + k] ** 2;
    y[m] = 1 / Math.sqrt(s / H + eps);
  }
  return y;
}

/** Token-major rows of a `[heads, seq, dim]` tensor for tokens [t0, t0+M): row m = concat over heads. */
export function flattenTokens(kv: Float32Array, heads: number, seq: number, dim: number, t0: number, M: number): Float32Array {
  const y = new Float32Array(M * heads * dim);
  for (let m = 0; m < M; m++)
    for (let h = 0; h < heads; h++)
      for (let d = 0; d < dim; d++) y[m * heads * dim + h * dim + d] = kv[(h * seq + t0 + m) * dim + d];
  return y;
}

export function randomArray(rand: () => number, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
}
