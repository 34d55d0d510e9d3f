/**
 * The WebGPU fuser with int8 weights (dawn.node, SwiftShader): every golden fixture quantised, compared with the
 * CPU reference on the SAME dequantised weights (same math, ≤ 1e-4) and, for information, with the f32 golden
 * outputs, and GPU weight bytes vs the f16 layout. Odd dims and `weightDType` selection: fuser-int8-options.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebGPUFuser } from '../../src/fuser/webgpu';
import { fuseCache } from '../../src/fuser/reference';
import { quantizeFuserWeights } from '../../src/fuser/quantize';
import { fuserGpuWeightBytes } from '../../src/fuser/weight-bytes';
import { randomFuserWeights } from '../../src/fuser/random-weights';
import { getTestGpu, skipReason, type TestGpu } from './dawn';
import { fixtureNames, loadFixture } from './fixtures';
import { bitEqual, cacheMaxDiff } from './kv-helpers';

const TOL = 1e-4;

describe.skipIf(skipReason)('WebGPU fuser with int8 weights on dawn.node', () => {
  let gpu: TestGpu;
  beforeAll(async () => {
    gpu = await getTestGpu();
  });
  afterAll(() => gpu?.release());
  const opts = () => ({ device: gpu.device, wgslLanguageFeatures: gpu.wgslLanguageFeatures });

  for (const name of fixtureNames())
    it(`fixture '${name}': int8 GPU = CPU reference on the dequantised weights (≤ ${TOL}); deviation from f32 reported`, async () => {
      const { weights, cases } = await loadFixture(name);
      const q = quantizeFuserWeights(weights);
      const fuser = await createWebGPUFuser(q, opts()); // int8 chosen automatically: every Linear carries `quant`
      expect(fuser.weightDType).toBe('int8');
      try {
        for (const c of cases) {
          const out = await fuser.fuse(c.receiver, c.sharer);
          const err = cacheMaxDiff(out, fuseCache(q, c.receiver, c.sharer));
          const dev = cacheMaxDiff(out, c.fused);
          console.log(`[int8 ${name}] seq=${c.seq} |gpu − cpu(int8)| ${err.toExponential(2)}, |int8 − f32 golden| ${dev.toExponential(2)}`);
          expect(err, `${name} seq ${c.seq}`).toBeLessThanOrEqual(TOL);
          weights.layers.forEach((layer, l) => {
            for (const p of ['key', 'value'] as const)
              expect(bitEqual(out[l][p].data, c.receiver[l][p].data), `layer ${l} ${p}`).toBe(layer[p].gateLogit <= 0);
          });
        }
      } finally {
        fuser.dispose();
      }
    });

  it('GPU weight bytes: int8 ≤ 0.55× the f16 layout (embedded-pair dims, hidden = inter = 128)', async () => {
    const dims = { receiver: { numLayers: 4, kvHeads: 2, headDim: 32 }, sharer: { numLayers: 3, kvHeads: 4, headDim: 16 },
      hiddenDim: 128, intermediateDim: 128, numMlpLayers: 3 };
    const q = quantizeFuserWeights(randomFuserWeights(1, dims));
    const int8 = await createWebGPUFuser(q, opts());
    const f32 = await createWebGPUFuser(q, { ...opts(), weightDType: 'f32' });
    // The f16 layout is the f32 one at 2 bytes per element (this device has no shader-f16 to build it).
    const f16Bytes = f32.weightBytes / 2;
    const model = { int8: fuserGpuWeightBytes(q.config, 'int8').totalBytes, f16: fuserGpuWeightBytes(q.config, 'f16').totalBytes };
    const ratio = int8.weightBytes / f16Bytes;
    console.log(`[int8 bytes] int8 ${int8.weightBytes} B, f16 ${f16Bytes} B, f32 ${f32.weightBytes} B → int8/f16 ${ratio.toFixed(3)}, int8/f32 ${(int8.weightBytes / f32.weightBytes).toFixed(3)}; weight-bytes.ts model int8 ${model.int8}, f16 ${model.f16}`);
    expect(ratio).toBeLessThanOrEqual(0.55);
    expect(ratio).toBeGreaterThan(0.45); // int8 is a quarter of f32 plus scales and f32 vectors, not less
    // The uploaded layout agrees with the config-only estimate to within the 4-word alignment of each tensor.
    expect(Math.abs(int8.weightBytes - model.int8) / model.int8).toBeLessThan(0.02);
    expect(Math.abs(f16Bytes - model.f16) / model.f16).toBeLessThan(0.02);
    int8.dispose();
    f32.dispose();
  });
});
