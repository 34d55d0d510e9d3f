/** GEMM program variants (dawn.node, SwiftShader) against plain CPU loops: every prologue/epilogue, scalar and vec4 loads. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGemmProgram, gemmDispatch, type GemmParams } from '../../src/fuser/webgpu/gemm';
import { createRowRmsProgram, rowRmsDispatch } from '../../src/fuser/webgpu/row-rms';
import { PipelineCache, type DispatchRecord } from '../../src/fuser/webgpu/program';
import { seededRandom } from '../../src/fuser/random-weights';
import { emptyBuffer, getTestGpu, maxAbsDiff, readback, skipReason, upload, type TestGpu, runDispatches } from './dawn';
import { geluErf, linear as mathLinear, rmsNorm as mathRmsNorm, sigmoid } from '../../src/fuser/math';
import { GEMM_MATRIX_CASES, concatTokenRows, invRms, randomArray } from './cpu-math';

// The CPU reference math (src/fuser/math.ts) in this file's argument order.
const linear = (a: Float32Array, M: number, K: number, w: Float32Array, N: number, b?: Float32Array) => mathLinear(a, w, b, M, K, N);
const rmsNorm = (x: Float32Array, M: number, _H: number, g: Float32Array, eps: number) => mathRmsNorm(x, g, M, eps);
const gelu = geluErf;

const TOL = 1e-4;

describe.skipIf(skipReason)('WGSL GEMM kernels on dawn.node', () => {
  let gpu: TestGpu;
  let cache: PipelineCache;
  beforeAll(async () => {
    gpu = await getTestGpu();
    cache = new PipelineCache(gpu.device);
  });
  afterAll(() => gpu?.release());

  const run = (records: DispatchRecord[]) => runDispatches(gpu.device, cache, records);

  /** Weight buffer [W | bias | g] with 4-aligned offsets, like the fuser's packer. */
  function packWeights(parts: Float32Array[]): { buffer: GPUBuffer; offsets: number[] } {
    const offsets: number[] = [];
    let n = 0;
    for (const p of parts) {
      offsets.push(n);
      n = Math.ceil((n + p.length) / 4) * 4;
    }
    const all = new Float32Array(Math.max(n, 4));
    parts.forEach((p, i) => all.set(p, offsets[i]));
    return { buffer: upload(gpu.device, all), offsets };
  }

  it('row inverse RMS matches', async () => {
    const rand = seededRandom(1);
    for (const [M, H] of [[1, 5], [7, 64], [33, 130]]) {
      const x = randomArray(rand, M * H, 2);
      const xb = upload(gpu.device, x);
      const out = emptyBuffer(gpu.device, M);
      await run([rowRmsDispatch({ dtype: 'f32' }, M, H, 1e-6, xb, out)]);
      expect(maxAbsDiff(await readback(gpu.device, out, M), invRms(x, M, H, 1e-6))).toBeLessThan(1e-5);
    }
  });

  const matrixCases = GEMM_MATRIX_CASES;
  for (const epilogue of ['none', 'gelu', 'residual', 'sigmoid'] as const)
    for (const norm of [false, true])
      it(`matrix input, ${norm ? 'RMSNorm prologue, ' : ''}${epilogue} epilogue`, async () => {
        const rand = seededRandom(7 + epilogue.length + (norm ? 100 : 0));
        for (const [M, N, K, components] of matrixCases) {
          const a = randomArray(rand, M * K, 1.5);
          const w = randomArray(rand, N * K, 1 / Math.sqrt(K));
          const b = randomArray(rand, N, 0.5);
          const g = Float32Array.from({ length: K }, () => 0.5 + rand());
          const res = randomArray(rand, M * N);
          const { buffer: wb, offsets } = packWeights([b, w, g]);
          const inv = invRms(a, M, K, 1e-6);
          const p: GemmParams = { dtype: 'f32', components, input: 'matrix', norm, bias: true, epilogue };
          const out = emptyBuffer(gpu.device, M * N);
          await run([
            gemmDispatch(p, { M, N, K, wOff: offsets[1], bOff: offsets[0], gOff: offsets[2], temperature: 0.7 }, {
              weights: wb, a: upload(gpu.device, a), invRms: upload(gpu.device, inv), residual: upload(gpu.device, res), out,
            }),
          ]);
          const y = linear(norm ? rmsNorm(a, M, K, g, 1e-6) : a, M, K, w, N, b);
          const want = y.map((v, i) => (epilogue === 'gelu' ? gelu(v) : epilogue === 'residual' ? v
            + res[i] : epilogue === 'sigmoid' ? sigmoid(v / 0.7) : v));
          expect(maxAbsDiff(await readback(gpu.device, out, M * N), want), `M=${M} N=${N} K=${K} c=${components}`).toBeLessThan(TOL);
        }
      });

  const kvCases: [number, number, number, number, number, number, 1 | 4][] = [
    // seq, tok0, M, sH, sD, rD(rH=2), components
    [5, 0, 5, 1, 3, 5, 1],
    [9, 2, 6, 3, 4, 8, 4],
    [40, 3, 37, 2, 16, 12, 4],
  ];
  it('kv-concat input reads concat(sharer, receiver) from [heads, seq, dim] buffers', async () => {
    const rand = seededRandom(11);
    for (const [seq, tok0, M, sH, sD, rD, components] of kvCases) {
      const rH = 2;
      const K = sH * sD + rH * rD;
      const N = 19;
      const s = randomArray(rand, sH * seq * sD);
      const r = randomArray(rand, rH * seq * rD);
      const w = randomArray(rand, N * K, 0.3);
      const b = randomArray(rand, N);
      const { buffer: wb, offsets } = packWeights([w, b]);
      const out = emptyBuffer(gpu.device, M * N);
      const p: GemmParams = { dtype: 'f32', components, input: 'kv-concat', norm: false, bias: true, epilogue: 'none' };
      await run([
        gemmDispatch(p, { M, N, K, wOff: offsets[0], bOff: offsets[1], seq, tok0, sharerHeads: sH, sharerDim: sD, receiverHeads: rH,
          receiverDim: rD }, {
          weights: wb, sharer: upload(gpu.device, s), receiver: upload(gpu.device, r), out,
        }),
      ]);
      const x = concatTokenRows(s, sH, sD, r, rH, rD, seq, tok0, M);
      expect(maxAbsDiff(await readback(gpu.device, out, M * N), linear(x, M, K, w, N, b)), `seq=${seq} c=${components}`).toBeLessThan(TOL);
    }
  });

  it('combine epilogue writes r + gate·w[h]·p into [heads, seq, dim] for the chunk only', async () => {
    const rand = seededRandom(13);
    for (const [seq, tok0, M, rH, rD, K, components] of [[7, 2, 4, 2, 3, 6, 1], [12, 0, 12, 3, 8, 16, 4]] as const) {
      const N = rH * rD;
      const a = randomArray(rand, M * K);
      const w = randomArray(rand, N * K, 0.4);
      const b = randomArray(rand, N);
      const hw = Float32Array.from({ length: M * rH }, () => rand());
      const r = randomArray(rand, rH * seq * rD);
      const { buffer: wb, offsets } = packWeights([w, b]);
      const out = upload(gpu.device, new Float32Array(rH * seq * rD).fill(123));
      const p: GemmParams = { dtype: 'f32', components: components as 1 | 4, input: 'matrix', norm: false, bias: true,
        epilogue: 'combine' };
      await run([
        gemmDispatch(p, { M, N, K, wOff: offsets[0], bOff: offsets[1], seq, tok0, receiverHeads: rH, receiverDim: rD, gate: 1 }, {
          weights: wb, a: upload(gpu.device, a), headWeight: upload(gpu.device, hw), receiver: upload(gpu.device, r), out,
        }),
      ]);
      const pmat = linear(a, M, K, w, N, b);
      const want = new Float32Array(rH * seq * rD).fill(123);
      for (let m = 0; m < M; m++)
        for (let h = 0; h < rH; h++)
          for (let d = 0; d < rD; d++) {
            const idx = (h * seq + tok0 + m) * rD + d;
            want[idx] = r[idx] + hw[m * rH + h] * pmat[m * N + h * rD + d];
          }
      expect(maxAbsDiff(await readback(gpu.device, out, want.length), want)).toBeLessThan(TOL);
    }
  });

  it('GELU epilogue uses a precise erf: |GELU_gpu − GELU_erf| ≤ 2e-6 on [-10, 10]', async () => {
    const M = 2001;
    const x = Float32Array.from({ length: M }, (_, i) => -10 + i / 100);
    const { buffer: wb } = packWeights([new Float32Array([1])]);
    const out = emptyBuffer(gpu.device, M);
    const p: GemmParams = { dtype: 'f32', components: 1, input: 'matrix', norm: false, bias: false, epilogue: 'gelu' };
    await run([gemmDispatch(p, { M, N: 1, K: 1, wOff: 0 }, { weights: wb, a: upload(gpu.device, x), out })]);
    const got = await readback(gpu.device, out, M);
    const want = Array.from(x, geluErf);
    console.log(`[gelu] max abs error on [-10, 10]: ${maxAbsDiff(got, want).toExponential(2)}`);
    expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(2e-6);
    // The tanh approximation differs by far more than that: the test can tell them apart.
    const tanhGelu = Array.from(x, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    expect(maxAbsDiff(tanhGelu, want)).toBeGreaterThan(1e-4);
  });

  it('every shader variant compiles without errors (f16 variants checked with f16 demoted to f32 when the device lacks shader-f16)',
    async () => {
    const hasF16 = gpu.device.features.has('shader-f16');
    const variants: { name: string; source: string }[] = [];
    for (const dtype of ['f32', 'f16'] as const) {
      variants.push(createRowRmsProgram({ dtype }));
      for (const components of [1, 4] as const)
        for (const input of ['matrix', 'kv-concat'] as const)
          for (const norm of [false, true])
            for (const bias of [false, true])
              for (const epilogue of ['none', 'gelu', 'residual', 'sigmoid', 'combine'] as const)
                variants.push(createGemmProgram({ dtype, components, input, norm, bias, epilogue }));
    }
    expect(new Set(variants.map((v) => (v as { cacheKey?: string }).cacheKey)).size).toBe(variants.length);
    for (const v of variants) {
      let code = v.source;
      if (code.startsWith('enable f16;')) {
        expect(code).toMatch(/array<(vec4<)?f16>?>/);
        if (!hasF16) code = code.replace('enable f16;', '').replace(/\bf16\b/g, 'f32');
      }
      const module = gpu.device.createShaderModule({ label: v.name, code });
      const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
      expect(errors.map((e) => `${v.name}: ${e.lineNum}:${e.linePos} ${e.message}`)).toEqual([]);
    }
  });
});
