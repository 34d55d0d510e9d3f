/** Small CPU helpers for the kernel tests (the math itself comes from src/fuser/math.ts). */
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

/** The kv-concat GEMM input on the CPU: per token, the sharer row then the receiver row (K = sH·sD + rH·rD). */
export function concatTokenRows(
  s: Float32Array, sH: number, sD: number, r: Float32Array, rH: number, rD: number, seq: number, tok0: number, M: number,
): Float32Array {
  const xs = flattenTokens(s, sH, seq, sD, tok0, M);
  const xr = flattenTokens(r, rH, seq, rD, tok0, M);
  const K = sH * sD + rH * rD;
  const x = new Float32Array(M * K);
  for (let m = 0; m < M; m++) {
    x.set(xs.subarray(m * sH * sD, (m + 1) * sH * sD), m * K);
    x.set(xr.subarray(m * rH * rD, (m + 1) * rH * rD), m * K + sH * sD);
  }
  return x;
}

export function randomArray(rand: () => number, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
}

/**
 * `[M, N, K, components]` GEMM shapes both kernel suites run: odd K pads every int8 row (K = 1, 3, 37), and the
 * vec4 path needs K % 4 = 0.
 */
export const GEMM_MATRIX_CASES: readonly (readonly [number, number, number, 1 | 4])[] = [
  [1, 1, 1, 1],
  [5, 7, 3, 1],
  [33, 40, 37, 1],
  [3, 9, 8, 4],
  [40, 33, 68, 4],
];
