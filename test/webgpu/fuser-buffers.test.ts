/**
 * GPU memory over many fusions (dawn.node, SwiftShader): every GPUBuffer the fuser creates is tracked, and after
 * 50 fusions on the copy path and 50 on the GPU-resident path the live buffers and bytes equal those after the
 * first (weights + steady-state scratch): nothing grows per call. Outputs of `fuseBuffers` belong to the caller,
 * who destroys them here, as the runtime does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebGPUFuser, type GpuKV } from '../../src/fuser/webgpu';
import { getTestGpu, skipReason, type TestGpu } from './dawn';
import { cacheToGpu } from './kv-helpers';
import { loadFixture } from './fixtures';

const RUNS = 50;

interface Tracker {
  live: Map<GPUBuffer, number>;
  bytes(): number;
  restore(): void;
}

/** Wraps device.createBuffer so every buffer (and its destroy) is counted. */
function trackBuffers(device: GPUDevice): Tracker {
  const live = new Map<GPUBuffer, number>();
  const create = device.createBuffer;
  device.createBuffer = function (desc: GPUBufferDescriptor): GPUBuffer {
    const buf = create.call(device, desc);
    live.set(buf, desc.size);
    const destroy = buf.destroy;
    buf.destroy = function () {
      live.delete(buf);
      return destroy.call(buf);
    };
    return buf;
  };
  return {
    live,
    bytes: () => [...live.values()].reduce((a, b) => a + b, 0),
    restore: () => {
      device.createBuffer = create;
    },
  };
}

describe.skipIf(skipReason)('WebGPU fuser: no GPU buffer growth over many fusions', () => {
  let gpu: TestGpu;
  beforeAll(async () => {
    gpu = await getTestGpu();
  });
  afterAll(() => gpu?.release());

  it(`copy path and GPU-resident path, ${RUNS} fusions each`, async () => {
    const tracker = trackBuffers(gpu.device);
    try {
      const { weights, cases } = await loadFixture('sharer_more_gates');
      const fuser = await createWebGPUFuser(weights, { device: gpu.device });
      const c = cases[cases.length - 1];
      // Inputs are created before tracking starts to matter: they belong to the test, not the fuser.
      const recv = cacheToGpu(gpu.device, c.receiver);
      const shar = cacheToGpu(gpu.device, c.sharer);

      await fuser.fuse(c.receiver, c.sharer);
      const after1 = { count: tracker.live.size, bytes: tracker.bytes() };
      for (let i = 0; i < RUNS; i++) await fuser.fuse(c.receiver, c.sharer);
      expect({ count: tracker.live.size, bytes: tracker.bytes() }).toEqual(after1);

      const release = (out: GpuKV) => out.forEach((l) => (l.key.destroy(), l.value.destroy()));
      release(await fuser.fuseBuffers(recv, shar, c.seq));
      const afterGpu1 = { count: tracker.live.size, bytes: tracker.bytes() };
      for (let i = 0; i < RUNS; i++) release(await fuser.fuseBuffers(recv, shar, c.seq));
      expect({ count: tracker.live.size, bytes: tracker.bytes() }).toEqual(afterGpu1);

      console.log(`[buffers] live after warm-up: ${afterGpu1.count} buffers, ${afterGpu1.bytes} B; unchanged after ${2 * RUNS} fusions`);
      fuser.dispose();
      [...recv, ...shar].forEach((l) => (l.key.destroy(), l.value.destroy()));
      // dispose() releases everything the fuser created.
      expect(tracker.live.size).toBe(0);
    } finally {
      tracker.restore();
    }
  });
});
