/**
 * WebGPU fuser int8 options (dawn.node, SwiftShader): odd dims (every packed int8 row padded) with chunking,
 * against the CPU reference on the dequantised weights, and `weightDType` selection/overrides.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebGPUFuser } from '../../src/fuser/webgpu';
import { fuseCache } from '../../src/fuser/reference';
import { quantizeFuserWeights } from '../../src/fuser/quantize';
import { randomFuserWeights, seededRandom } from '../../src/fuser/random-weights';
import { getTestGpu, skipReason, type TestGpu } from './dawn';
import { cacheMaxDiff, randomCache } from './kv-helpers';

const TOL = 1e-4;

describe.skipIf(skipReason)('WebGPU fuser int8 options on dawn.node', () => {
  let gpu: TestGpu;
  beforeAll(async () => {
    gpu = await getTestGpu();
  });
  afterAll(() => gpu?.release());
  const opts = () => ({ device: gpu.device, wgslLanguageFeatures: gpu.wgslLanguageFeatures });
  // Odd everywhere: no vec4 loads, every packed int8 row ends in padding. Both tests share these dims (and pipelines).
  const ODD = { receiver: { numLayers: 2, kvHeads: 3, headDim: 5 }, sharer: { numLayers: 2, kvHeads: 1, headDim: 7 }, hiddenDim: 13,
    intermediateDim: 19, numMlpLayers: 3 };

  it('odd dims (every int8 row padded) and chunking match the CPU reference', async () => {
    const rand = seededRandom(77);
    const w = quantizeFuserWeights(randomFuserWeights(5, ODD));
    const seq = 11;
    const r = randomCache(rand, 2, 3, seq, 5);
    const s = randomCache(rand, 2, 1, seq, 7);
    const fuser = await createWebGPUFuser(w, { ...opts(), maxChunkTokens: 4 });
    const a = await fuser.fuse(r, s);
    const err = cacheMaxDiff(a, fuseCache(w, r, s));
    console.log(`[int8 odd dims] |gpu − cpu(int8)| ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(TOL);
    fuser.dispose();
  });

  it("weightDType: 'int8' quantises float weights on upload; 'f32' on int8 weights runs the dequantised floats", async () => {
    const w = randomFuserWeights(9, ODD);
    const q = quantizeFuserWeights(w);
    const rand = seededRandom(3);
    const cfg = w.config;
    const r = randomCache(rand, cfg.receiver.numLayers, cfg.receiver.kvHeads, 6, cfg.receiver.headDim);
    const s = randomCache(rand, cfg.sharer.numLayers, cfg.sharer.kvHeads, 6, cfg.sharer.headDim);
    const auto = await createWebGPUFuser(w, opts());
    expect(auto.weightDType).toBe('f32'); // float weights stay float unless asked
    auto.dispose();
    const forced = await createWebGPUFuser(w, { ...opts(), weightDType: 'int8' });
    expect(forced.weightDType).toBe('int8');
    const asFloat = await createWebGPUFuser(q, { ...opts(), weightDType: 'f32' });
    expect(asFloat.weightDType).toBe('f32');
    const want = fuseCache(q, r, s);
    expect(cacheMaxDiff(await forced.fuse(r, s), want)).toBeLessThanOrEqual(TOL);
    expect(cacheMaxDiff(await asFloat.fuse(r, s), want)).toBeLessThanOrEqual(TOL);
    forced.dispose();
    asFloat.dispose();
    await expect(createWebGPUFuser(q, { ...opts(), dtype: 'f32', weightDType: 'f16' })).rejects.toThrow(/weightDType/);
  });

});
