/**
 * Per-row inverse RMS, `invRms[m] = 1 / sqrt(mean_k x[m, k]² + eps)`, computed once per row so the next
 * GEMM can apply RMSNorm on load (`gemm.ts`, `norm` prologue) instead of writing a normalised copy.
 * One workgroup per row; the sum of squares is accumulated in f32 whatever the activation dtype.
 */
import { ShapeMismatchError } from '../../errors';
import { packUniforms, type DispatchRecord, type ProgramInfo } from './program';
import { preamble, type KernelDType } from './wgsl';

export interface RowRmsParams {
  dtype: KernelDType;
}

const WG = 64;
const programs = new Map<string, ProgramInfo>();

export function rowRmsCacheKey(p: RowRmsParams): string {
  return `rowrms|${p.dtype}|wg${WG}`;
}

export function createRowRmsProgram(p: RowRmsParams): ProgramInfo {
  const key = rowRmsCacheKey(p);
  let program = programs.get(key);
  if (program) return program;
  const source = `${preamble(p.dtype)}
struct Uniforms { M: u32, H: u32, eps: f32, pad: u32 };
@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var<storage, read> X: array<${p.dtype}>;
@group(0) @binding(2) var<storage, read_write> invRms: array<f32>;
var<workgroup> partial: array<f32, ${WG}>;

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = wid.x;
  var s = 0.0;
  if (row < u.M) {
    for (var k = li; k < u.H; k += ${WG}u) {
      let x = f32(X[row * u.H + k]);
      s = fma(x, x, s);
    }
  }
  partial[li] = s;
  workgroupBarrier();
  for (var stride = ${WG / 2}u; stride > 0u; stride = stride / 2u) {
    if (li < stride) { partial[li] = partial[li] + partial[li + stride]; }
    workgroupBarrier();
  }
  if (li == 0u && row < u.M) {
    invRms[row] = 1.0 / sqrt(partial[0] / f32(u.H) + u.eps);
  }
}
`;
  program = { name: `c2c.${key.replaceAll('|', '.')}`, cacheKey: key, source };
  programs.set(key, program);
  return program;
}

export function validateRowRmsInputs(M: number, H: number, eps: number, maxGroups: number): void {
  if (!Number.isInteger(M) || M <= 0 || M > maxGroups) throw new ShapeMismatchError(`rowrms: M must be in 1..${maxGroups}, got ${M}`,
    { field: 'M' });
  if (!Number.isInteger(H) || H <= 0) throw new ShapeMismatchError(`rowrms: H must be a positive integer, got ${H}`, { field: 'H' });
  if (!(eps > 0)) throw new ShapeMismatchError(`rowrms: eps must be > 0, got ${eps}`, { field: 'eps' });
}

export function rowRmsDispatch(p: RowRmsParams, M: number, H: number, eps: number, x: GPUBuffer, out: GPUBuffer,
  maxGroups = 65535): DispatchRecord {
  validateRowRmsInputs(M, H, eps, maxGroups);
  return {
    program: createRowRmsProgram(p),
    uniforms: packUniforms([{ u32: M }, { u32: H }, { f32: eps }]),
    bindings: [
      { binding: 1, buffer: x },
      { binding: 2, buffer: out },
    ],
    groups: [M, 1, 1],
  };
}
