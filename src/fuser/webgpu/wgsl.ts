/**
 * Shared WGSL pieces for the fuser kernels: storage element types per dtype, precise erf/GELU, sigmoid,
 * and the f16 `enable` directive. Kernels are generated from TypeScript template strings (ORT style), so
 * every fact that changes the shader text must be a parameter that also enters the program's cache key.
 */

/** Storage dtype of weights and intermediate activations (KV storage is separate: `KVStore`). */
export type KernelDType = 'f32' | 'f16';

/**
 * How a KV buffer (`[heads, seq, head_dim]`) is stored and read: `f32`; `f16` as `array<f16>` (needs the
 * `shader-f16` device feature); or `f16-packed`: the same f16 bytes read as `array<u32>`, two halves per word,
 * with core WGSL's `unpack2x16float` (and written with `pack2x16float` through atomics, since two threads
 * write the two halves of one word). The packed path is how f16 KV is fused on devices without shader-f16:
 * the bytes are never widened outside the kernel. Arithmetic is f32 in every case.
 */
export type KVStore = 'f32' | 'f16' | 'f16-packed';

export const kvStoreBytes = (s: KVStore): number => (s === 'f32' ? 4 : 2);

/**
 * Storage of the Linear weight matrices: the kernel dtype, or `int8` (4 values per u32 word along `in`,
 * per-output-row f32 scales; biases and norm weights f32). Activations stay `KernelDType`.
 */
export type WeightDType = KernelDType | 'int8';

/** WGSL language feature that provides `unpack4xI8` (else the GEMM sign-extends with `extractBits`). */
export const PACKED_4X8_FEATURE = 'packed_4x8_integer_dot_product';

/** Bytes per stored weight/activation element. */
export function dtypeBytes(dtype: KernelDType): number {
  return dtype === 'f16' ? 2 : 4;
}

/** WGSL element type of a storage array: scalar or vec4 of the dtype. */
export function storageType(dtype: KernelDType, components: 1 | 4): string {
  return components === 4 ? `vec4<${dtype}>` : dtype;
}

/** Shader preamble: `enable f16;` only when a binding stores f16 (activations/weights, or native f16 KV). */
export function preamble(dtype: KernelDType, ...kv: (KVStore | undefined)[]): string {
  return dtype === 'f16' || kv.includes('f16') ? 'enable f16;\n' : '';
}

/**
 * WGSL that reads element `e` (`C` consecutive elements when C = 4; e is then a multiple of 4) of KV array
 * `name` as f32 / vec4<f32>.
 */
export function kvReadExpr(store: KVStore, name: string, C: 1 | 4, e: string): string {
  if (store === 'f32') return C === 4 ? `${name}[(${e}) / 4u]` : `${name}[${e}]`;
  if (store === 'f16') return C === 4 ? `vec4<f32>(${name}[(${e}) / 4u])` : `f32(${name}[${e}])`;
  return C === 4
    ? `vec4<f32>(unpack2x16float(${name}[(${e}) >> 1u]), unpack2x16float(${name}[((${e}) >> 1u) + 1u]))`
    : `unpack2x16float(${name}[(${e}) >> 1u])[(${e}) & 1u]`;
}

/** WGSL element type of a KV storage array (`atomic` for the packed output). */
export function kvArrayType(store: KVStore, C: 1 | 4, atomic = false): string {
  if (store === 'f16-packed') return atomic ? 'atomic<u32>' : 'u32';
  return C === 4 ? `vec4<${store}>` : store;
}

/**
 * erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), odd-extended; GELU is the exact-erf form used by
 * `nn.GELU()`, not the tanh approximation (the two differ by up to ~1e-3, far above our 1e-4 tolerance).
 */
export const ERF_GELU_WGSL = /* wgsl */ `
fn erf_f32(x: f32) -> f32 {
  let ax = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * ax);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  let y = 1.0 - poly * exp(-ax * ax);
  return select(-y, y, x >= 0.0);
}

fn gelu_f32(x: f32) -> f32 {
  return 0.5 * x * (1.0 + erf_f32(x * 0.7071067811865476));
}
`;

/** sigmoid written so that exp never overflows into inf/inf. */
export const SIGMOID_WGSL = /* wgsl */ `
fn sigmoid_f32(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}
`;
