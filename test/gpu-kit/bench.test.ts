/**
 * The GPU kit's bench module (scripts/gpu-kit/bench.ts, what the kit's bench.mjs bundles) at tiny dims on
 * dawn.node + lavapipe (SwiftShader where lavapipe is absent: then f16 must be skipped with its reason): the
 * report's shape, every dtype checked against the CPU reference within its tolerance, and the `fusion` block.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKitBench, TOLERANCE, type KitBenchReport } from '../../scripts/gpu-kit/bench';
import { getTestGpu, lavapipeMissing, skipReason, type TestGpu } from '../webgpu/dawn';

const noDriver = lavapipeMissing && skipReason ? `${lavapipeMissing}; ${skipReason}` : undefined;

interface DTypeResult {
  status: string;
  reason?: string;
  kernelDType: 'f16' | 'f32';
  weightDType: string;
  check: { maxAbsError: number | string; tolerance: number; pass: boolean; maxMove: number };
  fuser: { ms: number; gflops: number; runsMs: number[] };
  plainGemm: { ms: number; gflops: number; dtype: string };
  timeRatioVsPlainGemm: number;
}

describe.skipIf(noDriver)(`GPU kit bench at tiny dims${noDriver ? ` (skipped: ${noDriver})` : ''}`, () => {
  let gpu: TestGpu;
  let report: KitBenchReport;
  beforeAll(async () => {
    gpu = await getTestGpu('lavapipe');
    report = await runKitBench(gpu.device, gpu.adapter, {
      // intermediate ≠ hidden, so scalar_mlp2's hidden inner width is exercised too.
      receiver: { numLayers: 3, kvHeads: 2, headDim: 16 }, sharer: { numLayers: 2, kvHeads: 2, headDim: 8 },
      hiddenDim: 32, intermediateDim: 48, tokens: 12, reps: 2, warmup: 1, checkTokens: 8,
      wgslLanguageFeatures: gpu.wgslLanguageFeatures,
    });
  }, 60_000);
  afterAll(() => gpu?.release());

  it('reports the adapter, features, dims and check windows; JSON round-trips', () => {
    expect(JSON.parse(JSON.stringify(report)), 'no NaN/Infinity lost in JSON').toEqual(report);
    expect(typeof report.adapter.vendor).toBe('string');
    expect(report.adapter.cpuAdapter, 'lavapipe/SwiftShader are CPU adapters').toBe(true);
    expect(report.adapter.note).toMatch(/correctness only/);
    expect(report.features).toEqual([...gpu.device.features].sort());
    expect(report.dims).toMatchObject({ hiddenDim: 32, intermediateDim: 48, numMlpLayers: 3, releasedDims: false });
    expect(report.check.windows).toEqual([[0, 4], [8, 12]]);
    expect(report.paths).toBe(6);
    expect(report.gflopPerFusion).toBeGreaterThan(0);
  });

  it('checks every dtype against the CPU reference within its tolerance (f16 skipped only without shader-f16)', () => {
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    const hasF16 = gpu.device.features.has('shader-f16');
    for (const name of ['f16', 'f32', 'int8'] as const) {
      const r = report.results[name] as DTypeResult;
      if (name === 'f16' && !hasF16) {
        expect(r).toEqual({ status: 'skipped', reason: 'the adapter has no shader-f16 feature' });
        continue;
      }
      expect(r.status, `${name}: ${JSON.stringify(r)}`).toBe('ok');
      expect(r.weightDType).toBe(name === 'int8' ? 'int8' : name);
      expect(typeof r.check.maxAbsError, `${name} error must be a number (NaN is written as "NaN")`).toBe('number');
      expect(r.check.maxAbsError as number).toBeLessThanOrEqual(TOLERANCE[r.kernelDType]);
      expect(r.check.tolerance).toBe(TOLERANCE[r.kernelDType]);
      expect(r.check.maxMove, 'the fuser must change the KV by more than the tolerance').toBeGreaterThan(10 * r.check.tolerance);
      expect(r.fuser.runsMs).toHaveLength(2);
      expect(r.fuser.ms).toBeGreaterThan(0);
      expect(r.fuser.gflops).toBeGreaterThan(0);
      expect(r.plainGemm.dtype).toBe(r.kernelDType);
      expect(r.timeRatioVsPlainGemm).toBeCloseTo(r.fuser.ms / r.plainGemm.ms, 2);
    }
  });

  it('has the fusion block a later bench:scale cites', () => {
    const main = report.results[gpu.device.features.has('shader-f16') ? 'f16' : 'f32'] as DTypeResult;
    const { ms, gflops } = main.fuser;
    expect(report.fusion).toMatchObject({ layers: 3, tokens: 12, ms, gflops, fullDepthReleased: false, cpuAdapter: true });
  });
});
