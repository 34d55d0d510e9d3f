/**
 * Property-style sweep of the WebGPU fuser against the CPU reference: random odd dims (not multiples of 4), seq 1..40,
 * closed gates, chunk sizes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebGPUFuser } from '../../src/fuser/webgpu';
import { fuseCache } from '../../src/fuser/reference';
import { randomFuserWeights, seededRandom } from '../../src/fuser/random-weights';
import { getTestGpu, skipReason, type TestGpu } from './dawn';
import { cacheMaxDiff, randomCache } from './kv-helpers';

const TOL = 1e-4;

describe.skipIf(skipReason)('WebGPU fuser sweep on dawn.node', () => {
  let gpu: TestGpu;
  beforeAll(async () => {
    gpu = await getTestGpu();
  });
  afterAll(() => gpu?.release());

  it('random odd dims and seq 1..40 match the CPU reference (seeded)', async () => {
    const rand = seededRandom(2026);
    const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const odd = (lo: number, hi: number) => pick(lo, hi) | 1;
    const seqs = [1, 40, pick(2, 39), pick(2, 39), pick(2, 39)];
    for (const [trial, seq] of seqs.entries()) {
      const receiver = { numLayers: pick(1, 3), kvHeads: pick(1, 3), headDim: odd(1, 11) };
      // Every other trial has sharer head dims that allow vec4 loads on its own, but never both sides.
      const sharer = { numLayers: pick(1, 3), kvHeads: pick(1, 3), headDim: trial % 2 ? 4 * pick(1, 3) : odd(1, 9) };
      const closed = new Set([`${pick(0, receiver.numLayers - 1)}.${rand() < 0.5 ? 'key' : 'value'}`]);
      const opts = { receiver, sharer, hiddenDim: odd(3, 37), intermediateDim: odd(3, 41), numMlpLayers: pick(3, 5) };
      const weights = randomFuserWeights(1000 + trial, { ...opts, gateLogit: (l, p) => (closed.has(`${l}.${p}`) ? -1 : 0.5) });
      const cfg = weights.config;
      const r = randomCache(rand, cfg.receiver.numLayers, cfg.receiver.kvHeads, seq, cfg.receiver.headDim);
      const s = randomCache(rand, cfg.sharer.numLayers, cfg.sharer.kvHeads, seq, cfg.sharer.headDim);
      const chunk = pick(1, 48);
      const fuser = await createWebGPUFuser(weights, { device: gpu.device, maxChunkTokens: chunk });
      try {
        const err = cacheMaxDiff(await fuser.fuse(r, s), fuseCache(weights, r, s));
        expect(err, `trial ${trial}: ${JSON.stringify({ ...opts, seq, chunk })}`).toBeLessThanOrEqual(TOL);
      } finally {
        fuser.dispose();
      }
    }
  });
});
