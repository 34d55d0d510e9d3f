/**
 * Tiled GEMM `C[m, n] = Σ_k A[m, k] · W[n, k]` (+ bias) with the fuser's prologues and epilogues fused in:
 * - input `kv-concat`: A = concat(sharer, receiver) read straight from the two KV buffers in
 *   `[heads, seq, head_dim]` layout (no transpose or concat copy); input `matrix`: A is an `[M, K]` activation;
 * - prologue `norm`: RMSNorm applied on load, `A[m, k] · invRms[m] · g[k]` (invRms from `row-rms.ts`);
 * - epilogues `gelu`, `residual` (`+ Res[m, n]`), `sigmoid` (head weight `σ(z / T)`), and `combine`, which
 *   writes `out = r + gate · w[h] · p` into the receiver-shaped output KV buffer.
 * W is `[N, K]` row-major (PyTorch Linear) inside the shared weight buffer at element offset `wOff`.
 * int8 weights (`weights: 'int8'`): the buffer is `array<u32>` with offsets in words; W rows hold 4 int8 per
 * word along K (rows padded to whole words with zeros), unpacked on load by `unpack4xI8` (language feature
 * `packed_4x8_integer_dot_product`) or by shifts with sign extension; the per-row scale at word `sOff` is
 * applied once in the epilogue, `acc · scale[n] + bias[n]` (= Σ A·(q·scale), one multiply per output).
 * Bias and norm weights are f32 words in that mode.
 * KV buffers (the kv-concat input, the combine's receiver read and output) are stored as `sharerKV` / `receiverKV`
 * (wgsl.ts `KVStore`: f32, native f16, or f16 pairs packed in u32 words for devices without shader-f16), read
 * to f32, combined in f32 and rounded once when the combine stores an f16 output.
 * Workgroup 8×8 threads, each computing a 4×4 register block of a 32×32 tile; K is staged through
 * workgroup memory 32 at a time, loaded as vec4 when every K run is a multiple of 4.
 */
import { ShapeMismatchError } from '../../errors';
import { packUniforms, type DispatchRecord, type ProgramInfo } from './program';
import { ERF_GELU_WGSL, PACKED_4X8_FEATURE, SIGMOID_WGSL, kvArrayType, kvReadExpr, preamble, storageType, type KVStore,
  type KernelDType } from './wgsl';

export type GemmInput = 'matrix' | 'kv-concat';
export type GemmEpilogue = 'none' | 'gelu' | 'residual' | 'sigmoid' | 'combine';

/** Everything that changes the shader text (and so the cache key). */
export interface GemmParams {
  dtype: KernelDType;
  components: 1 | 4;
  input: GemmInput;
  norm: boolean;
  bias: boolean;
  epilogue: GemmEpilogue;
  /** Weight matrix storage: `float` (= `dtype`, the default) or packed `int8` with per-row scales. */
  weights?: 'float' | 'int8';
  /** int8 unpacking: WGSL `unpack4xI8` ('builtin', needs the language feature) or shifts ('bits', default). */
  unpack?: 'builtin' | 'bits';
  /** Storage of the sharer KV (kv-concat input); default f32. */
  sharerKV?: KVStore;
  /** Storage of the receiver KV (kv-concat input, combine read and output); default f32. */
  receiverKV?: KVStore;
}

/** The KV stores a variant actually reads or writes (f32 where it touches no KV buffer, so keys do not split). */
function kvStores(p: GemmParams): { s: KVStore; r: KVStore } {
  const concat = p.input === 'kv-concat';
  return { s: concat ? (p.sharerKV ?? 'f32') : 'f32', r: concat || p.epilogue === 'combine' ? (p.receiverKV ?? 'f32') : 'f32' };
}

/** Run-time shape facts, passed as uniforms. */
export interface GemmShape {
  M: number;
  N: number;
  K: number;
  /** Element offsets inside the weight buffer. */
  wOff: number;
  bOff?: number;
  gOff?: number;
  /** int8: word offset of the `[N]` f32 row scales. */
  sOff?: number;
  /** KV facts (kv-concat input, combine epilogue): total tokens in the buffers and first token of this chunk. */
  seq?: number;
  tok0?: number;
  sharerHeads?: number;
  sharerDim?: number;
  receiverHeads?: number;
  receiverDim?: number;
  temperature?: number;
  gate?: number;
}

export interface GemmBuffers {
  weights: GPUBuffer;
  /** `matrix` input. */
  a?: GPUBuffer;
  /** `kv-concat` input. */
  sharer?: GPUBuffer;
  receiver?: GPUBuffer;
  invRms?: GPUBuffer;
  residual?: GPUBuffer;
  /** combine: head weights `[M, receiverHeads]` f32. */
  headWeight?: GPUBuffer;
  out: GPUBuffer;
}

export const GEMM_TILE = 32;
const TK = 32;
const WG = 8; // 8×8 threads, 4×4 outputs each
const THREADS = WG * WG;

const isInt8 = (p: GemmParams) => p.weights === 'int8';

export function gemmCacheKey(p: GemmParams): string {
  const w = isInt8(p) ? `w-int8-${p.unpack ?? 'bits'}` : `w-${p.dtype}`;
  const { s, r } = kvStores(p);
  const kv = s === 'f32' && r === 'f32' ? '' : `|kv-${s}-${r}`;
  return `gemm|${p.dtype}|c${p.components}|${p.input}|${p.norm ? 'norm' : 'nonorm'}|${p.bias ? 'bias' : 'nobias'}|${p.epilogue}|${w}${kv}`;
}

/** Rejects shapes the shader cannot serve, before anything is encoded. */
export function validateGemmInputs(p: GemmParams, s: GemmShape, maxGroups: number): void {
  const bad = (field: string, msg: string) => {
    throw new ShapeMismatchError(`gemm ${gemmCacheKey(p)}: ${field} ${msg}`, { field });
  };
  for (const f of ['M', 'N', 'K'] as const) if (!Number.isInteger(s[f]) || s[f] <= 0) bad(f, `must be a positive integer, got ${s[f]}`);
  if (Math.ceil(s.M / GEMM_TILE) > maxGroups || Math.ceil(s.N / GEMM_TILE) > maxGroups) bad('M/N', `exceed ${maxGroups} workgroups`);
  if (isInt8(p) && !(Number.isInteger(s.sOff) && (s.sOff ?? -1) >= 0)) bad('sOff', 'is required for int8 weights');
  if (p.components === 4) {
    // int8 offsets count words: one word is already the 4-wide load.
    if (!isInt8(p)) for (const f of ['wOff', 'gOff'] as const) if ((s[f] ?? 0) % 4 !== 0) bad(f, 'must be a multiple of 4 for vec4 loads');
    if (p.input === 'matrix' && s.K % 4 !== 0) bad('K', 'must be a multiple of 4 for vec4 loads');
    if (p.input === 'kv-concat' && ((s.sharerDim ?? 0) % 4 !== 0 || (s.receiverDim ?? 0) % 4 !== 0)) bad('headDim',
      'must be a multiple of 4 for vec4 loads');
  }
  if (p.input === 'kv-concat' || p.epilogue === 'combine') {
    if (!s.seq || s.tok0 === undefined || s.tok0 + s.M > s.seq) bad('seq',
      `chunk [${s.tok0}, ${(s.tok0 ?? 0) + s.M}) outside seq ${s.seq}`);
  }
  if (p.input === 'kv-concat' && (s.sharerHeads ?? 0) * (s.sharerDim ?? 0) + (s.receiverHeads ?? 0) * (s.receiverDim ?? 0) !== s.K)
    bad('K', `must equal sharerHeads·sharerDim + receiverHeads·receiverDim`);
  if (p.epilogue === 'combine' && (s.receiverHeads ?? 0) * (s.receiverDim ?? 0) !== s.N) bad('N', 'must equal receiverHeads·receiverDim');
}

const programs = new Map<string, ProgramInfo>();

/** Generates (once per cache key) the WGSL program for `p`. */
export function createGemmProgram(p: GemmParams): ProgramInfo {
  const key = gemmCacheKey(p);
  let program = programs.get(key);
  if (!program) {
    program = { name: `c2c.${key.replaceAll('|', '.')}`, cacheKey: key, source: gemmSource(p) };
    programs.set(key, program);
  }
  return program;
}

function gemmSource(p: GemmParams): string {
  const C = p.components;
  const int8 = isInt8(p);
  const builtin = int8 && p.unpack === 'builtin';
  const wT = int8 ? 'u32' : storageType(p.dtype, C);
  const act = p.dtype;
  const vecF = C === 4 ? 'vec4<f32>' : 'f32';
  const kv = kvStores(p);
  const loads = (GEMM_TILE * TK) / C / THREADS;
  const bindings: string[] = [`@group(0) @binding(1) var<storage, read> W: array<${wT}>;`];
  if (p.input === 'matrix') bindings.push(`@group(0) @binding(2) var<storage, read> A: array<${storageType(act, C)}>;`);
  else {
    bindings.push(`@group(0) @binding(2) var<storage, read> S: array<${kvArrayType(kv.s, C)}>;`);
    bindings.push(`@group(0) @binding(3) var<storage, read> R: array<${kvArrayType(kv.r, C)}>;`);
  }
  if (p.norm) bindings.push(`@group(0) @binding(4) var<storage, read> invRms: array<f32>;`);
  if (p.epilogue === 'residual') bindings.push(`@group(0) @binding(5) var<storage, read> Res: array<${act}>;`);
  if (p.epilogue === 'combine') {
    bindings.push(`@group(0) @binding(6) var<storage, read> Hw: array<f32>;`);
    bindings.push(`@group(0) @binding(7) var<storage, read> Rkv: array<${kvArrayType(kv.r, 1)}>;`);
  }
  const outT = p.epilogue === 'combine' ? kvArrayType(kv.r, 1, true) : p.epilogue === 'sigmoid' ? 'f32' : act;
  bindings.push(`@group(0) @binding(8) var<storage, read_write> Out: array<${outT}>;`);

  // Scalar read of the weight buffer (bias, norm weight), whatever its vector width.
  const wScalar = int8 ? 'bitcast<f32>(W[i])' : C === 4 ? 'f32(W[i / 4u][i % 4u])' : 'f32(W[i])';
  const normVec = int8
    ? C === 4
      ? 'vec4<f32>(wScalar(u.gOff + k), wScalar(u.gOff + k + 1u), wScalar(u.gOff + k + 2u), wScalar(u.gOff + k + 3u))'
      : 'wScalar(u.gOff + k)'
    : C === 4
      ? `${vecF}(W[(u.gOff + k) / 4u])`
      : 'f32(W[u.gOff + k])';
  // int8: the word holding W[n, k] (rows padded to whole words), unpacked to f32 with sign extension.
  const loadW = !int8
    ? `return ${vecF}(W[(u.wOff + n * u.K + k) / ${C}u]);`
    : `let w = W[u.wOff + n * ((u.K + 3u) / 4u) + k / 4u];
  ${
    C === 4
      ? builtin
        ? 'return vec4<f32>(unpack4xI8(w));'
        : 'return vec4<f32>(vec4<i32>(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w)) >> vec4<u32>(24u));'
      : builtin
        ? 'return f32(unpack4xI8(w)[k % 4u]);'
        : 'return f32(bitcast<i32>(w << (24u - 8u * (k % 4u))) >> 24u);'
  }`;
  const scaled = int8 ? 'acc * bitcast<f32>(W[u.sOff + n])' : 'acc';

  const loadA =
    p.input === 'matrix'
      ? `let v = ${vecF}(A[(m * u.K + k) / ${C}u]);`
      : `let t = u.tok0 + m;
  let inS = u.sH * u.sD;
  var v: ${vecF};
  if (k < inS) {
    v = ${kvReadExpr(kv.s, 'S', C, '(k / u.sD) * u.seq * u.sD + t * u.sD + k % u.sD')};
  } else {
    let k2 = k - inS;
    v = ${kvReadExpr(kv.r, 'R', C, '(k2 / u.rD) * u.seq * u.rD + t * u.rD + k2 % u.rD')};
  }`;
  const normApply = p.norm ? `return v * (invRms[m] * ${normVec});` : 'return v;';

  const store = (() => {
    switch (p.epilogue) {
      case 'none':
        return `Out[m * u.N + n] = ${act}(v);`;
      case 'gelu':
        return `Out[m * u.N + n] = ${act}(gelu_f32(v));`;
      case 'residual':
        return `Out[m * u.N + n] = ${act}(v + f32(Res[m * u.N + n]));`;
      case 'sigmoid':
        return `Out[m * u.N + n] = sigmoid_f32(v / u.temp);`;
      case 'combine': {
        const head = `let h = n / u.rD;
  let idx = (h * u.seq + u.tok0 + m) * u.rD + n % u.rD;
  let fused = ${kvReadExpr(kv.r, 'Rkv', 1, 'idx')} + u.gate * Hw[m * u.rH + h] * v;`;
        if (kv.r === 'f32') return `${head}\n  Out[idx] = fused;`;
        if (kv.r === 'f16') return `${head}\n  Out[idx] = f16(fused);`;
        // Two threads own the two halves of a word: each clears and sets only its own half, atomically.
        return `${head}
  let bits = pack2x16float(vec2<f32>(fused, 0.0)) & 0xffffu;
  let word = idx >> 1u;
  if ((idx & 1u) == 0u) {
    atomicAnd(&Out[word], 0xffff0000u);
    atomicOr(&Out[word], bits);
  } else {
    atomicAnd(&Out[word], 0x0000ffffu);
    atomicOr(&Out[word], bits << 16u);
  }`;
      }
    }
  })();

  const stageStores =
    C === 4
      ? `As[r * TK + kk] = a.x; As[r * TK + kk + 1u] = a.y; As[r * TK + kk + 2u] = a.z; As[r * TK + kk + 3u] = a.w;
      Bs[r * TK + kk] = b.x; Bs[r * TK + kk + 1u] = b.y; Bs[r * TK + kk + 2u] = b.z; Bs[r * TK + kk + 3u] = b.w;`
      : `As[r * TK + kk] = a;
      Bs[r * TK + kk] = b;`;

  const source = `${preamble(p.dtype, kv.s, kv.r)}${builtin ? `requires ${PACKED_4X8_FEATURE};\n` : ''}
struct Uniforms {
  M: u32, N: u32, K: u32, wOff: u32,
  bOff: u32, gOff: u32, seq: u32, tok0: u32,
  sH: u32, sD: u32, rH: u32, rD: u32,
  temp: f32, gate: f32, sOff: u32, pad1: u32,
};
@group(0) @binding(0) var<uniform> u: Uniforms;
${bindings.join('\n')}

const TILE = ${GEMM_TILE}u;
const TK = ${TK}u;
var<workgroup> As: array<f32, ${GEMM_TILE * TK}>;
var<workgroup> Bs: array<f32, ${GEMM_TILE * TK}>;
${p.epilogue === 'gelu' ? ERF_GELU_WGSL : ''}${p.epilogue === 'sigmoid' ? SIGMOID_WGSL : ''}
fn wScalar(i: u32) -> f32 { return ${wScalar}; }

// A[m, k..k+${C}) as f32 (zeros outside the matrix), with the RMSNorm prologue when enabled.
fn loadA(m: u32, k: u32) -> ${vecF} {
  if (m >= u.M || k >= u.K) { return ${vecF}(0.0); }
  ${loadA}
  ${normApply}
}

// W[n, k..k+${C}) as f32 (zeros outside).
fn loadB(n: u32, k: u32) -> ${vecF} {
  if (n >= u.N || k >= u.K) { return ${vecF}(0.0); }
  ${loadW}
}

fn epilogue(m: u32, n: u32, acc: f32) {
  ${p.bias ? `let v = ${scaled} + wScalar(u.bOff + n);` : `let v = ${scaled};`}
  ${store}
}

@compute @workgroup_size(${WG}, ${WG}, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(workgroup_id) wid: vec3<u32>) {
  let m0 = wid.y * TILE;
  let n0 = wid.x * TILE;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < u.K; k0 += TK) {
    for (var t = 0u; t < ${loads}u; t++) {
      let idx = li + ${THREADS}u * t;
      let r = idx / ${TK / C}u;
      let kk = (idx % ${TK / C}u) * ${C}u;
      let a = loadA(m0 + r, k0 + kk);
      let b = loadB(n0 + r, k0 + kk);
      ${stageStores}
    }
    workgroupBarrier();
    for (var k = 0u; k < TK; k++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = As[(lid.y + ${WG}u * i) * TK + k];
        b[i] = Bs[(lid.x + ${WG}u * i) * TK + k];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let m = m0 + lid.y + ${WG}u * i;
      let n = n0 + lid.x + ${WG}u * j;
      if (m < u.M && n < u.N) { epilogue(m, n, acc[i][j]); }
    }
  }
}
`;
  return source;
}

/** Builds the dispatch record for one GEMM; validates first. */
export function gemmDispatch(p: GemmParams, s: GemmShape, b: GemmBuffers, maxGroups = 65535): DispatchRecord {
  validateGemmInputs(p, s, maxGroups);
  const uniforms = packUniforms([
    { u32: s.M }, { u32: s.N }, { u32: s.K }, { u32: s.wOff },
    { u32: s.bOff ?? 0 }, { u32: s.gOff ?? 0 }, { u32: s.seq ?? 0 }, { u32: s.tok0 ?? 0 },
    { u32: s.sharerHeads ?? 0 }, { u32: s.sharerDim ?? 0 }, { u32: s.receiverHeads ?? 0 }, { u32: s.receiverDim ?? 0 },
    { f32: s.temperature ?? 1 }, { f32: s.gate ?? 1 }, { u32: s.sOff ?? 0 },
  ]);
  const bindings: { binding: number; buffer: GPUBuffer }[] = [{ binding: 1, buffer: b.weights }];
  const need = (name: keyof GemmBuffers, binding: number) => {
    const buf = b[name];
    if (!buf) throw new ShapeMismatchError(`gemm ${gemmCacheKey(p)}: buffer '${name}' is required`, { field: name });
    bindings.push({ binding, buffer: buf });
  };
  if (p.input === 'matrix') need('a', 2);
  else {
    need('sharer', 2);
    need('receiver', 3);
  }
  if (p.norm) need('invRms', 4);
  if (p.epilogue === 'residual') need('residual', 5);
  if (p.epilogue === 'combine') {
    need('headWeight', 6);
    need('receiver', 7);
  }
  need('out', 8);
  return {
    program: createGemmProgram(p),
    uniforms,
    bindings,
    groups: [Math.ceil(s.N / GEMM_TILE), Math.ceil(s.M / GEMM_TILE), 1],
  };
}
