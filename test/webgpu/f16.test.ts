/**
 * The f16 WGSL paths executed on dawn.node + Mesa lavapipe (llvmpipe has `shader-f16`), numerically against the
 * CPU reference, with one tolerance per storage dtype (derivations next to each constant):
 *  - f16 KV with f32 kernels, native `array<f16>` and packed u32 (`unpack2x16float`/`pack2x16float`) bindings,
 *    through `fuse` (CPU arrays) and `fuseBuffers` (GPU-resident f16 buffers);
 *  - f16 weights/activations (the default kernel dtype on any GPU with shader-f16), with f32 and f16 KV;
 *  - int8 weights with f16 activations;
 *  - every f16 shader variant compiles natively (no demotion to f32).
 * Skipped, with the reason, where lavapipe is not installed (npm test installs it as root on Debian 12).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebGPUFuser } from '../../src/fuser/webgpu';
import { createGemmProgram } from '../../src/fuser/webgpu/gemm';
import { createRowRmsProgram } from '../../src/fuser/webgpu/row-rms';
import { fuseCache } from '../../src/fuser/reference';
import { quantizeFuserWeights } from '../../src/fuser/quantize';
import { randomFuserWeights, seededRandom } from '../../src/fuser/random-weights';
import { float16BitsToFloat32, roundThrough } from '../../src/util/half';
import { widenData } from '../../src/kv/ops';
import type { FuserWeights, KVCache, KVTensor, LinearParams } from '../../src/types';
import { f16SkipReason, getTestGpu, readback16, upload, type TestGpu } from './dawn';
import { randomCache } from './kv-helpers';
import { toF16Cache, toF32Cache } from '../helpers/kv-dtype';

/** f32 kernels: the dawn.node fuser suites' tolerance (f32 accumulation-order differences, ~1e-6 here). */
const TOL_F32 = 1e-4;
/**
 * f16 KV output: the GPU rounds its f32 result once. Against the unrounded reference that is at most half an f16
 * ulp of the value plus the f32 kernel error; a truncating or otherwise wrong rounding exceeds it on many elements.
 */
const halfUlp = (v: number) => 2 ** (Math.max(Math.floor(Math.log2(Math.abs(v) || 2 ** -14)), -14) - 11);
/**
 * f16 weights and activations: every stored activation carries ≤ 2^-11 relative error and a path chains 6–8
 * GEMMs; measured max |error| ≈ 4e-3 on values of magnitude ≤ ~6. The bound is 2^-11 × (max |value| ≈ 8) × 8
 * stages ≈ 3.1e-2, rounded to 3e-2, still far below the fused-minus-receiver change the fuser makes (> 0.3).
 */
const TOL_F16_ACT = 3e-2;

/** Weights rounded through f16, as the f16 kernels store them (Linear weights, biases and norm weights). */
function roundWeightsF16(w: FuserWeights): FuserWeights {
  const lin = (p: LinearParams): LinearParams => ({ ...p, weight: roundThrough(p.weight, 'float16'), bias: p.bias
    && roundThrough(p.bias, 'float16') });
  const path = (p: FuserWeights['layers'][number]['key']) => ({
    ...p,
    in: lin(p.in), scalarHead: lin(p.scalarHead), projOut: lin(p.projOut),
    ...Object.fromEntries((['mlp1', 'scalarMlp2', 'projMlp2'] as const).map(
      (k) => [k, p[k].map((b) => ({ norm: roundThrough(b.norm, 'float16'), w1: lin(b.w1), w2: lin(b.w2) }))])),
  });
  return { ...w, layers: w.layers.map((l) => ({ key: path(l.key), value: path(l.value) })) };
}

/** Max over elements of (|got − want| − allowed(want)); ≤ 0 passes. `got` may be f16 bits. */
function worstExcess(got: KVCache, want: KVCache, allowed: (v: number) => number): number {
  let worst = -Infinity;
  got.forEach((layer, l) => {
    for (const p of ['key', 'value'] as const) {
      const g = widenData(layer[p]);
      const w = widenData(want[l][p]);
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Number.isNaN(g[i]) ? Infinity : Math.abs(g[i] - w[i]) - allowed(w[i]));
    }
  });
  return worst;
}

const bitsEqual = (a: KVTensor, b: KVTensor) => a.dtype === b.dtype
  && Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(
  Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));

describe.skipIf(f16SkipReason)(`f16 WGSL kernels on dawn.node + lavapipe${f16SkipReason ? ` (skipped: ${f16SkipReason})` : ''}`, () => {
  let gpu: TestGpu;
  beforeAll(async () => {
    gpu = await getTestGpu('lavapipe');
  });
  afterAll(() => gpu?.release());

  // Embedded-pair-like dims (hidden = intermediate = 32, GQA), one closed path, a chunk size that splits seq.
  const closed = (l: number, p: 'key' | 'value') => (l === 1 && p === 'value' ? -1 : 0.5);
  const weights = randomFuserWeights(16, {
    receiver: { numLayers: 3, kvHeads: 2, headDim: 8 }, sharer: { numLayers: 2, kvHeads: 2, headDim: 12 },
    hiddenDim: 32, intermediateDim: 32, gateLogit: closed,
  });
  const cfg = weights.config;
  const rand = seededRandom(61);
  const seq = 13;
  const r32 = randomCache(rand, cfg.receiver.numLayers, cfg.receiver.kvHeads, seq, cfg.receiver.headDim);
  const s32 = randomCache(rand, cfg.sharer.numLayers, cfg.sharer.kvHeads, seq, cfg.sharer.headDim);
  const r16 = toF16Cache(r32), s16 = toF16Cache(s32);

  it('the device is lavapipe with shader-f16 (the suites below need it)', () => {
    expect(gpu.device.features.has('shader-f16'), `adapter ${JSON.stringify(gpu.adapter.info)}`).toBe(true);
  });

  // lavapipe compiles each kernel variant on first dispatch (seconds each without a warm Mesa cache), so each
  // binding runs f16/f16 plus one mixed pair: between them every KV read and write path is covered.
  const pairs = { native: [['f16/f16', r16, s16], ['f16 receiver, f32 sharer', r16, s32]],
    packed: [['f16/f16', r16, s16], ['f32 receiver, f16 sharer', r32, s16]] } as const;
  for (const f16KV of ['native', 'packed'] as const)
    it(`f16 KV, f32 kernels, ${f16KV} binding: fused tokens within ½ f16 ulp + ${TOL_F32} of the unrounded reference, the rest bit-identical`, async () => {
      const fuser = await createWebGPUFuser(weights, { device: gpu.device, dtype: 'f32', f16KV, maxChunkTokens: 5 });
      expect(fuser.f16KV).toBe(f16KV);
      try {
        for (const [label, r, s] of pairs[f16KV]) {
          const out = await fuser.fuse(r, s, { start: 2, end: 11 });
          out.forEach((layer, l) => expect(layer.key.dtype ?? 'float32', label).toBe(r[l].key.dtype ?? 'float32'));
          // The reference on the same (widened) inputs, unrounded: f32 KV in, f32 out.
          const want = fuseCache(weights, toF32Cache(r), toF32Cache(s), { start: 2, end: 11 });
          const excess = worstExcess(out, want, (v) => (r[0].key.dtype === 'float16' ? halfUlp(v) : 0) + TOL_F32);
          console.log(`[f16 KV ${f16KV}] ${label}: worst |err| − allowed = ${excess.toExponential(2)}`);
          expect(excess, label).toBeLessThanOrEqual(0);
          // Closed path, and tokens outside [2, 11): the receiver's own bits.
          expect(bitsEqual(out[1].value, r[1].value), `${label} closed path`).toBe(true);
          const t = out[0].key, hd = t.headDim;
          for (const tok of [0, 1, 11, 12]) for (let h = 0; h < t.heads; h++) {
            const at = (h * seq + tok) * hd;
            expect(Array.from(t.data.subarray(at, at + hd)), `${label} token ${tok}`).toEqual(
              Array.from(r[0].key.data.subarray(at, at + hd)));
          }
        }
      } finally {
        fuser.dispose();
      }
    });

  it('fuseBuffers on f16 GPU buffers (the single-worker WebGPU path) returns f16 buffers equal to fuse()', async () => {
    const fuser = await createWebGPUFuser(weights, { device: gpu.device, dtype: 'f32' });
    const toGpu = (c: KVCache) => c.map((l) => ({ key: upload(gpu.device, l.key.data), value: upload(gpu.device, l.value.data) }));
    const rb = toGpu(r16), sb = toGpu(s16);
    try {
      const bufs = await fuser.fuseBuffers(rb, sb, seq, { receiverDType: 'float16', sharerDType: 'float16' });
      const viaCpu = await fuser.fuse(r16, s16);
      for (let l = 0; l < bufs.length; l++)
        for (const p of ['key', 'value'] as const) {
          const n = viaCpu[l][p].data.length;
          expect(bufs[l][p].size).toBeGreaterThanOrEqual(n * 2);
          expect(bufs[l][p].size, 'f16 output buffers, not f32').toBeLessThan(n * 4);
          expect(Array.from(await readback16(gpu.device, bufs[l][p], n))).toEqual(Array.from(viaCpu[l][p].data));
          bufs[l][p].destroy();
        }
      // An f32-sized claim on f16 buffers is caught before any GPU work.
      await expect(fuser.fuseBuffers(rb, sb, seq)).rejects.toThrow(/float32 needs/);
    } finally {
      [...rb, ...sb].forEach((b) => (b.key.destroy(), b.value.destroy()));
      fuser.dispose();
    }
  });

  it(`f16 weights and activations (the shader-f16 default) on f16 KV: within ${TOL_F16_ACT} of the reference on the f16-rounded weights`,
    async () => {
      const fuser = await createWebGPUFuser(weights, { device: gpu.device });
      expect(fuser.dtype).toBe('f16');
      try {
        const [r, s] = [r16, s16];
        const out = await fuser.fuse(r, s);
        const want = fuseCache(roundWeightsF16(weights), r, s);
        const excess = worstExcess(out, want, () => TOL_F16_ACT);
        const moved = worstExcess(want, r, () => 0);
        console.log(`[f16 activations, f16 KV] worst |err| = ${(excess + TOL_F16_ACT).toExponential(2)}; fused − receiver up to ${moved.toFixed(3)}`);
        expect(excess).toBeLessThanOrEqual(0);
        expect(moved, 'the fuser must move the KV by more than the tolerance').toBeGreaterThan(10 * TOL_F16_ACT);
        expect(bitsEqual(out[1].value, r[1].value)).toBe(true);
      } finally {
        fuser.dispose();
      }
    });

  it(`int8 weights with f16 activations: within ${TOL_F16_ACT} of the reference on the same int8 model`, async () => {
    const q = quantizeFuserWeights(weights);
    const fuser = await createWebGPUFuser(q, { device: gpu.device, dtype: 'f16' });
    expect(fuser.weightDType).toBe('int8');
    try {
      const out = await fuser.fuse(r16, s16);
      // int8 weights are exact on the GPU (q · scale); biases and norm weights are f32 words there.
      const excess = worstExcess(out, fuseCache(q, r16, s16), (v) => TOL_F16_ACT + halfUlp(v));
      expect(excess).toBeLessThanOrEqual(0);
    } finally {
      fuser.dispose();
    }
  });

  it('every f16 shader variant (f16 activations, f16 / packed KV) compiles natively', async () => {
    const variants = [createRowRmsProgram({ dtype: 'f16' })];
    for (const dtype of ['f32', 'f16'] as const)
      for (const components of [1, 4] as const)
        for (const kv of ['f16', 'f16-packed'] as const) {
          variants.push(createGemmProgram({ dtype, components, input: 'kv-concat', norm: false, bias: true, epilogue: 'none',
            sharerKV: kv, receiverKV: kv }));
          variants.push(createGemmProgram({ dtype, components, input: 'matrix', norm: false, bias: true, epilogue: 'combine',
            receiverKV: kv }));
          if (dtype === 'f16') variants.push(createGemmProgram(
            { dtype, components, input: 'matrix', norm: true, bias: false, epilogue: kv === 'f16' ? 'gelu' : 'residual' }));
        }
    for (const v of variants) {
      if (v.source.includes('f16>') || v.source.includes('f16(')) expect(v.source.startsWith('enable f16;'), v.name).toBe(true);
      const module = gpu.device.createShaderModule({ label: v.name, code: v.source });
      const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
      expect(errors.map((e) => `${v.name}: ${e.lineNum}:${e.linePos} ${e.message}`)).toEqual([]);
    }
  });
});

// The halfUlp helper is itself checked against the bit conversions (so a wrong tolerance cannot hide).
describe('halfUlp (the f16 tolerance unit)', () => {
  it('is half the spacing of adjacent f16 values', () => {
    for (const bits of [0x3c00, 0x4000, 0x4500, 0x5bff, 0x0400, 0x2e66]) {
      const v = float16BitsToFloat32(bits);
      expect(halfUlp(v)).toBe((float16BitsToFloat32(bits + 1) - v) / 2);
    }
  });
});
