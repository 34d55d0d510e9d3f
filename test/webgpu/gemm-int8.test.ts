/**
 * int8-weight GEMM variants (dawn.node, SwiftShader) against CPU loops on the dequantised weights q·scale:
 * both unpack paths (`unpack4xI8` when the language feature exists, shifts otherwise), odd K (padded rows),
 * every prologue/epilogue, kv-concat input and the combine epilogue; plus a compile check of every variant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGemmProgram, gemmDispatch, type GemmParams } from '../../src/fuser/webgpu/gemm';
import { PipelineCache, type DispatchRecord } from '../../src/fuser/webgpu/program';
import { packInt8Rows } from '../../src/fuser/webgpu/weights';
import { PACKED_4X8_FEATURE } from '../../src/fuser/webgpu/wgsl';
import { dequantizeInt8, quantizeInt8 } from '../../src/fuser/quantize';
import { seededRandom } from '../../src/fuser/random-weights';
import { geluErf, linear as mathLinear, rmsNorm as mathRmsNorm, sigmoid } from '../../src/fuser/math';
import { emptyBuffer, getTestGpu, maxAbsDiff, readback, skipReason, upload, uploadWords, type TestGpu, runDispatches } from './dawn';
import { GEMM_MATRIX_CASES, concatTokenRows, invRms, randomArray } from './cpu-math';

const TOL = 1e-4;

describe.skipIf(skipReason)('int8-weight WGSL GEMM on dawn.node', () => {
  let gpu: TestGpu;
  let cache: PipelineCache;
  let unpacks: ('builtin' | 'bits')[];
  beforeAll(async () => {
    gpu = await getTestGpu();
    cache = new PipelineCache(gpu.device);
    unpacks = gpu.wgslLanguageFeatures.has(PACKED_4X8_FEATURE) ? ['builtin', 'bits'] : ['bits'];
    console.log(`[int8 gemm] unpack paths tested: ${unpacks.join(', ')}`);
  });
  afterAll(() => gpu?.release());

  const run = (records: DispatchRecord[]) => runDispatches(gpu.device, cache, records);

  /** Quantised weight + its packed word buffer `[packed W | scale | bias | g]` (no alignment: int8 offsets are words). */
  function int8Weights(w: Float32Array, N: number, K: number, vectors: Float32Array[]) {
    const q = quantizeInt8(w, N, K);
    const parts: Uint32Array[] = [packInt8Rows(q.weight, N, K), new Uint32Array(q.scale.buffer.slice(0)),
      ...vectors.map((v) => new Uint32Array(v.buffer.slice(0)))];
    const offsets: number[] = [];
    let n = 0;
    for (const p of parts) {
      offsets.push(n);
      n += p.length;
    }
    const words = new Uint32Array(Math.max(n, 4));
    parts.forEach((p, i) => words.set(p, offsets[i]));
    return { deq: dequantizeInt8(q.weight, q.scale, N, K), buffer: uploadWords(gpu.device, words), wOff: offsets[0],
      sOff: offsets[1], vOff: offsets.slice(2) };
  }

  it('packs 4 int8 per little-endian word, rows padded with zeros', () => {
    const words = packInt8Rows(Int8Array.from([1, -2, 3, -127, 5, 6, 7, 8, -9, 10]), 2, 5);
    expect(words.length).toBe(4);
    const bytes = new Int8Array(words.buffer);
    expect(Array.from(bytes)).toEqual([1, -2, 3, -127, 5, 0, 0, 0, 6, 7, 8, -9, 10, 0, 0, 0]);
    expect(words[0]).toBe((1 | (0xfe << 8) | (3 << 16) | (0x81 << 24)) >>> 0);
  });

  const cases = GEMM_MATRIX_CASES;
  for (const epilogue of ['none', 'gelu', 'residual', 'sigmoid'] as const)
    it(`matrix input, ${epilogue} epilogue (with and without RMSNorm prologue, bias)`, async () => {
      const rand = seededRandom(300 + epilogue.length);
      for (const unpack of unpacks)
        for (const [ci, [M, N, K, components]] of cases.entries()) {
          // The shift path (also the fallback) gets the padded scalar case and the vec4 case: fewer pipelines to compile.
          if (unpack === 'bits' && unpacks.length > 1 && ci < 2) continue;
          const norm = ci % 2 === 1;
          const bias = ci !== 2;
          const a = randomArray(rand, M * K, 1.5);
          const w = randomArray(rand, N * K, 1 / Math.sqrt(K));
          const b = randomArray(rand, N, 0.5);
          const g = Float32Array.from({ length: K }, () => 0.5 + rand());
          const res = randomArray(rand, M * N);
          const W = int8Weights(w, N, K, [b, g]);
          const p: GemmParams = { dtype: 'f32', components, input: 'matrix', norm, bias, epilogue, weights: 'int8', unpack };
          const out = emptyBuffer(gpu.device, M * N);
          await run([
            gemmDispatch(p, { M, N, K, wOff: W.wOff, sOff: W.sOff, bOff: W.vOff[0], gOff: W.vOff[1], temperature: 0.7 }, {
              weights: W.buffer, a: upload(gpu.device, a), invRms: upload(gpu.device, invRms(a, M, K, 1e-6)),
                residual: upload(gpu.device, res), out,
            }),
          ]);
          const y = mathLinear(norm ? mathRmsNorm(a, g, M, 1e-6) : a, W.deq, bias ? b : undefined, M, K, N);
          const want = y.map((v, i) => (epilogue === 'gelu' ? geluErf(v) : epilogue === 'residual' ? v
            + res[i] : epilogue === 'sigmoid' ? sigmoid(v / 0.7) : v));
          const err = maxAbsDiff(await readback(gpu.device, out, M * N), want);
          expect(err, `${unpack} M=${M} N=${N} K=${K} c=${components} norm=${norm}`).toBeLessThanOrEqual(TOL);
        }
    });

  it('kv-concat input and combine epilogue with int8 weights (odd head dims pad the rows)', async () => {
    const rand = seededRandom(31);
    for (const unpack of unpacks)
      for (const [seq, tok0, M, sH, sD, rD, components] of [[5, 0, 5, 1, 3, 5, 1], [40, 3, 37, 2, 16, 12, 4]] as const) {
        const rH = 2;
        const K = sH * sD + rH * rD;
        const N = rH * rD;
        const s = randomArray(rand, sH * seq * sD);
        const r = randomArray(rand, rH * seq * rD);
        const w = randomArray(rand, N * K, 0.3);
        const b = randomArray(rand, N);
        const W = int8Weights(w, N, K, [b]);
        const kv = { seq, tok0, sharerHeads: sH, sharerDim: sD, receiverHeads: rH, receiverDim: rD };
        const base = { dtype: 'f32', components: components as 1 | 4, norm: false, bias: true, weights: 'int8', unpack } as const;
        const hOut = emptyBuffer(gpu.device, M * N);
        await run([gemmDispatch({ ...base, input: 'kv-concat', epilogue: 'none' },
          { M, N, K, wOff: W.wOff, sOff: W.sOff, bOff: W.vOff[0], ...kv },
          { weights: W.buffer, sharer: upload(gpu.device, s), receiver: upload(gpu.device, r), out: hOut })]);
        const x = concatTokenRows(s, sH, sD, r, rH, rD, seq, tok0, M);
        const err = maxAbsDiff(await readback(gpu.device, hOut, M * N), mathLinear(x, W.deq, b, M, K, N));
        expect(err, `kv-concat ${unpack} K=${K} c=${components}`).toBeLessThanOrEqual(TOL);

        // combine: out = r + gate·w[h]·(W·a + b), A = the previous input rows (K' = K) written only for the chunk.
        const hw = Float32Array.from({ length: M * rH }, () => rand());
        const out = upload(gpu.device, new Float32Array(rH * seq * rD).fill(123));
        await run([
          gemmDispatch({ ...base, input: 'matrix', components: K % 4 === 0 ? components : 1, epilogue: 'combine' },
            { M, N, K, wOff: W.wOff, sOff: W.sOff, bOff: W.vOff[0], gate: 1, ...kv }, {
            weights: W.buffer, a: upload(gpu.device, x), headWeight: upload(gpu.device, hw), receiver: upload(gpu.device, r), out,
          }),
        ]);
        const pm = mathLinear(x, W.deq, b, M, K, N);
        const want = new Float32Array(rH * seq * rD).fill(123);
        for (let m = 0; m < M; m++)
          for (let h = 0; h < rH; h++)
            for (let d = 0; d < rD; d++) {
              const idx = (h * seq + tok0 + m) * rD + d;
              want[idx] = r[idx] + hw[m * rH + h] * pm[m * N + h * rD + d];
            }
        expect(maxAbsDiff(await readback(gpu.device, out, want.length), want), `combine ${unpack}`).toBeLessThanOrEqual(TOL);
      }
  });

  it('rejects int8 dispatches without a scale offset', () => {
    const p: GemmParams = { dtype: 'f32', components: 1, input: 'matrix', norm: false, bias: false, epilogue: 'none', weights: 'int8' };
    const buf = emptyBuffer(gpu.device, 4);
    expect(() => gemmDispatch(p, { M: 1, N: 1, K: 1, wOff: 0 }, { weights: buf, a: buf, out: buf })).toThrow(/sOff/);
  });

  it('every int8 variant compiles (getCompilationInfo) and has its own cache key', async () => {
    const hasF16 = gpu.device.features.has('shader-f16');
    const variants = [];
    for (const dtype of ['f32', 'f16'] as const)
      for (const unpack of unpacks)
        for (const components of [1, 4] as const)
          for (const input of ['matrix', 'kv-concat'] as const)
            for (const norm of [false, true])
              for (const bias of [false, true])
                for (const epilogue of ['none', 'gelu', 'residual', 'sigmoid', 'combine'] as const)
                  variants.push(createGemmProgram({ dtype, components, input, norm, bias, epilogue, weights: 'int8', unpack }));
    const floatKey = createGemmProgram({ dtype: 'f32', components: 4, input: 'matrix', norm: false, bias: true,
      epilogue: 'none' }).cacheKey;
    const keys = new Set(variants.map((v) => v.cacheKey));
    expect(keys.size).toBe(variants.length);
    expect(keys.has(floatKey)).toBe(false);
    for (const v of variants) {
      expect(v.source).toMatch(/array<u32>/);
      expect(v.source.includes('unpack4xI8')).toBe(v.cacheKey.includes('builtin'));
      let code = v.source;
      if (code.startsWith('enable f16;') && !hasF16) code = code.replace('enable f16;', '').replace(/\bf16\b/g, 'f32');
      const module = gpu.device.createShaderModule({ label: v.name, code });
      const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
      expect(errors.map((e) => `${v.name}: ${e.lineNum}:${e.linePos} ${e.message}`)).toEqual([]);
    }
  });
});
