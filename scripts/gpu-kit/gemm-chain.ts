/**
 * The plain GEMM chain of the fuser benchmarks: every Linear of every open path as the same tiled GEMM kernel the
 * fuser uses, without its fusion (no RMSNorm prologue, GELU/residual/combine epilogues), all in one submission.
 * Each GEMM reads its own weights, as in the fuser, so both stream the same bytes (a CPU rasterizer's caches would
 * otherwise flatter a chain that reuses one small weight matrix). Used by scripts/bench-fuser.mjs and the GPU kit.
 */
import { gemmDispatch } from '../../src/fuser/webgpu/gemm';
import { PipelineCache, encodeDispatches, type DispatchRecord } from '../../src/fuser/webgpu/program';
import type { KernelDType } from '../../src/fuser/webgpu/wgsl';
import { pathLinearShapes, type FuserDims } from '../../src/fuser/shapes';

/** Times one async run (warm-up included by the caller's timer); returns its median in ms. */
export type Timer = (run: () => Promise<void>) => Promise<number>;

export interface GemmChainResult {
  ms: number;
  /** Multiply-add FLOPs of the whole chain (2 per MAC). */
  flops: number;
  dtype: KernelDType;
}

/** The GEMM shapes [M, N, K] of one path over M tokens (every Linear, scalar_mlp2 at its hidden inner width). */
export const pathGemmShapes = (cfg: FuserDims, M: number): [number, number, number][] =>
  pathLinearShapes(cfg).map(([n, k]) => [M, n, k]);

export async function plainGemmChain(
  device: GPUDevice, cfg: FuserDims, tokens: number, paths: number, time: Timer, dtype: KernelDType = 'f32',
): Promise<GemmChainResult> {
  const storage = (elems: number) => device.createBuffer({
    size: Math.max(16, Math.ceil((elems * (dtype === 'f16' ? 2 : 4)) / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const cache = PipelineCache.forDevice(device);
  const shapes = pathGemmShapes(cfg, tokens);
  const maxK = Math.max(...shapes.map((s) => s[2]));
  const maxN = Math.max(...shapes.map((s) => s[1]));
  const pathElems = shapes.reduce((n, [, N, K]) => n + Math.ceil((N * K) / 4) * 4, 0);
  const weights = Array.from({ length: paths }, () => storage(pathElems));
  const a = storage(tokens * maxK);
  const out = storage(tokens * maxN);
  const records: DispatchRecord[] = [];
  for (let p = 0; p < paths; p++) {
    let wOff = 0;
    for (const [M, N, K] of shapes) {
      const params = { dtype, components: K % 4 === 0 ? 4 : 1, input: 'matrix', norm: false, bias: false, epilogue: 'none' } as const;
      records.push(gemmDispatch(params, { M, N, K, wOff }, { weights: weights[p], a, out }));
      wOff += Math.ceil((N * K) / 4) * 4;
    }
  }
  await cache.warm(records.map((r) => r.program));
  const run = async () => {
    const enc = device.createCommandEncoder();
    const ub = encodeDispatches(device, cache, enc, records, 'bench.plain-gemm');
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    ub?.destroy();
  };
  try {
    const ms = await time(run);
    return { ms, flops: paths * shapes.reduce((s, [M, N, K]) => s + 2 * M * N * K, 0), dtype };
  } finally {
    [...weights, a, out].forEach((b) => b.destroy());
  }
}
