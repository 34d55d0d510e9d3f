/**
 * The whole WebGPU fuser on dawn.node (SwiftShader): golden fixtures, GPU-resident path, closed gates, chunking, sweeps
 * vs the CPU reference.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebGPUFuser } from '../../src/fuser/webgpu';
import { fuseCache } from '../../src/fuser/reference';
import { PipelineCache } from '../../src/fuser/webgpu/program';
import { getTestGpu, maxAbsDiff, readback, skipReason, type TestGpu } from './dawn';
import { fixtureNames, loadFixture } from './fixtures';
import { bitEqual, cacheMaxDiff, cacheToGpu } from './kv-helpers';

const TOL = 1e-4;

describe.skipIf(skipReason)('WebGPU fuser on dawn.node', () => {
  let gpu: TestGpu;
  beforeAll(async () => {
    gpu = await getTestGpu();
  });
  afterAll(() => gpu?.release());

  for (const name of fixtureNames())
    it(`matches the golden fixture '${name}' within ${TOL}`, async () => {
      const { weights, cases } = await loadFixture(name);
      const fuser = await createWebGPUFuser(weights, { device: gpu.device });
      expect(fuser.dtype).toBe('f32');
      try {
        for (const c of cases) {
          const out = await fuser.fuse(c.receiver, c.sharer);
          const err = cacheMaxDiff(out, c.fused);
          console.log(`[fixture ${name}] seq=${c.seq} max abs error ${err.toExponential(2)}`);
          expect(err, `${name} seq ${c.seq}`).toBeLessThanOrEqual(TOL);
          weights.layers.forEach((layer, l) => {
            for (const p of ['key', 'value'] as const) {
              const closed = layer[p].gateLogit <= 0;
              // Closed gates leave the receiver bit-identical; open gates must change it.
              expect(bitEqual(out[l][p].data, c.receiver[l][p].data), `layer ${l} ${p} closed=${closed}`).toBe(closed);
            }
          });
        }
      } finally {
        fuser.dispose();
      }
    });

  it('fuseBuffers: GPU-resident KV in, fresh f32 [heads, seq, dim] buffers out, closed gates copied bit for bit', async () => {
    const { weights, cases } = await loadFixture('sharer_more_gates');
    const fuser = await createWebGPUFuser(weights, { device: gpu.device });
    const c = cases[cases.length - 1];
    const recv = cacheToGpu(gpu.device, c.receiver);
    const shar = cacheToGpu(gpu.device, c.sharer);
    const out = await fuser.fuseBuffers(recv, shar, c.seq);
    expect(out).toHaveLength(weights.config.receiver.numLayers);
    for (let l = 0; l < out.length; l++)
      for (const p of ['key', 'value'] as const) {
        const buf = out[l][p];
        expect(buf).not.toBe(recv[l][p]);
        expect(buf.usage & (GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST)).toBe(
          GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        );
        const got = await readback(gpu.device, buf, c.fused[l][p].data.length);
        expect(maxAbsDiff(got, c.fused[l][p].data)).toBeLessThanOrEqual(TOL);
        if (weights.layers[l][p].gateLogit <= 0) expect(bitEqual(got, c.receiver[l][p].data)).toBe(true);
        buf.destroy();
      }
    // Inputs untouched.
    expect(bitEqual(await readback(gpu.device, recv[0].key, c.receiver[0].key.data.length), c.receiver[0].key.data)).toBe(true);
    fuser.dispose();
  });

  it('chunked fusion equals unchunked bit for bit (artificially small chunks)', async () => {
    const { weights, cases } = await loadFixture('dims_differ');
    const c = cases.find((x) => x.seq === 33)!;
    const whole = await createWebGPUFuser(weights, { device: gpu.device });
    const chunked = await createWebGPUFuser(weights, { device: gpu.device, maxChunkTokens: 5 });
    expect(chunked.chunkTokens).toBe(5);
    expect(whole.chunkTokens).toBeGreaterThan(33);
    const a = await whole.fuse(c.receiver, c.sharer);
    // Shapes live in uniforms: other sequence lengths and chunkings reuse the same pipelines.
    const pipelines = PipelineCache.forDevice(gpu.device).size;
    for (const other of cases.filter((x) => x !== c)) await whole.fuse(other.receiver, other.sharer);
    const b = await chunked.fuse(c.receiver, c.sharer);
    expect(PipelineCache.forDevice(gpu.device).size).toBe(pipelines);
    a.forEach((layer, l) => {
      expect(bitEqual(layer.key.data, b[l].key.data), `layer ${l} key`).toBe(true);
      expect(bitEqual(layer.value.data, b[l].value.data), `layer ${l} value`).toBe(true);
    });
    expect(cacheMaxDiff(b, c.fused)).toBeLessThanOrEqual(TOL);
    whole.dispose();
    chunked.dispose();
  });

  it('weights split over several buffers (one path per buffer) give the same result', async () => {
    const { weights, cases } = await loadFixture('sharer_fewer_mlp4');
    const c = cases[cases.length - 1];
    const one = await createWebGPUFuser(weights, { device: gpu.device });
    const pathBytes = one.weightBytes / (2 * weights.config.receiver.numLayers);
    const split = await createWebGPUFuser(weights, { device: gpu.device, maxWeightBufferBytes: Math.ceil(pathBytes * 1.5) });
    expect(one.weightBuffers).toBe(1);
    expect(split.weightBuffers).toBe(2 * weights.config.receiver.numLayers);
    const a = await one.fuse(c.receiver, c.sharer);
    const b = await split.fuse(c.receiver, c.sharer);
    a.forEach((layer, l) => {
      expect(bitEqual(layer.key.data, b[l].key.data)).toBe(true);
      expect(bitEqual(layer.value.data, b[l].value.data)).toBe(true);
    });
    expect(cacheMaxDiff(b, c.fused)).toBeLessThanOrEqual(TOL);
    await expect(createWebGPUFuser(weights, { device: gpu.device,
      maxWeightBufferBytes: Math.floor(pathBytes / 2) })).rejects.toThrow(/weight buffer limit/);
    one.dispose();
    split.dispose();
  });

  it('fuses only tokens [start, end) and keeps the others bit-identical, like the reference', async () => {
    const { weights, cases } = await loadFixture('dims_differ');
    const c = cases.find((x) => x.seq === 33)!;
    const fuser = await createWebGPUFuser(weights, { device: gpu.device, maxChunkTokens: 8 });
    const out = await fuser.fuse(c.receiver, c.sharer, { start: 3, end: 30 });
    const ref = fuseCache(weights, c.receiver, c.sharer, { start: 3, end: 30 });
    expect(cacheMaxDiff(out, ref)).toBeLessThanOrEqual(TOL);
    const { heads, headDim, seq } = c.receiver[0].key;
    for (let h = 0; h < heads; h++)
      for (const tok of [0, 1, 2, 30, 31, 32]) {
        const at = (h * seq + tok) * headDim;
        expect(bitEqual(out[0].key.data.subarray(at, at + headDim), c.receiver[0].key.data.subarray(at, at + headDim))).toBe(true);
      }
    fuser.dispose();
  });
});
