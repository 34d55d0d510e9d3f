/**
 * Bad input and device loss: typed errors before any GPU work, the fuser stays usable, and a lost device never yields a
 * half-written cache.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceLostError, DisposedError, InvalidInputError, ShapeMismatchError, WebGPUUnavailableError } from '../../src/errors';
import { createWebGPUFuser, type WebGPUFuser } from '../../src/fuser/webgpu';
import { getTestGpu, skipReason, upload, type TestGpu } from './dawn';
import { loadFixture, type FixtureCase } from './fixtures';
import { cacheMaxDiff } from './kv-helpers';
import type { KVCache } from '../../src/types';

const clone = (cache: KVCache): KVCache => cache.map((l) => ({ key: { ...l.key }, value: { ...l.value } }));

describe.skipIf(skipReason)('WebGPU fuser errors on dawn.node', () => {
  let gpu: TestGpu;
  let fuser: WebGPUFuser;
  let c: FixtureCase;
  beforeAll(async () => {
    gpu = await getTestGpu();
    const fx = await loadFixture('gqa_explicit_map');
    c = fx.cases[0];
    fuser = await createWebGPUFuser(fx.weights, { device: gpu.device });
  });
  afterAll(() => {
    fuser?.dispose();
    gpu?.release();
  });

  it('rejects KV that does not fit the fuser with ShapeMismatchError, then still fuses correctly', async () => {
    const wrongHeads = clone(c.receiver);
    const v = wrongHeads[1].value;
    wrongHeads[1].value = { ...v, dtype: 'float32', heads: v.heads + 1, data: new Float32Array((v.heads + 1) * v.seq * v.headDim) };
    await expect(fuser.fuse(wrongHeads, c.sharer)).rejects.toBeInstanceOf(ShapeMismatchError);
    await expect(fuser.fuse(c.receiver, c.sharer.slice(1))).rejects.toBeInstanceOf(ShapeMismatchError);
    const wrongDim = clone(c.sharer);
    wrongDim[0].key = { ...wrongDim[0].key, dtype: 'float32', headDim: wrongDim[0].key.headDim * 2,
      data: new Float32Array(wrongDim[0].key.data.length * 2) };
    await expect(fuser.fuse(c.receiver, wrongDim)).rejects.toThrow(/headDim/);
    const ok = await fuser.fuse(c.receiver, c.sharer);
    expect(cacheMaxDiff(ok, c.fused)).toBeLessThanOrEqual(1e-4);
  });

  it('rejects seq 0, mismatched sharer/receiver seq, and bad ranges before GPU work', async () => {
    const empty = (cache: KVCache): KVCache => cache.map((l) => (
      { key: { ...l.key, dtype: 'float32', seq: 0, data: new Float32Array(0) },
      value: { ...l.value, dtype: 'float32', seq: 0, data: new Float32Array(0) } }));
    await expect(fuser.fuse(empty(c.receiver), empty(c.sharer))).rejects.toBeInstanceOf(InvalidInputError);
    const longer = c.sharer.map((l) => ({
      key: { ...l.key, dtype: 'float32' as const, seq: l.key.seq + 1,
        data: new Float32Array(l.key.heads * (l.key.seq + 1) * l.key.headDim) },
      value: { ...l.value, dtype: 'float32' as const, seq: l.value.seq + 1,
        data: new Float32Array(l.value.heads * (l.value.seq + 1) * l.value.headDim) },
    }));
    const err = await fuser.fuse(c.receiver, longer).catch((e) => e);
    expect(err).toBeInstanceOf(ShapeMismatchError);
    expect(err.message).toMatch(/seq/);
    await expect(fuser.fuse(c.receiver, c.sharer, { start: 2, end: 1 })).rejects.toBeInstanceOf(InvalidInputError);
    const gpuKV = (cache: KVCache) => cache.map((l) => ({ key: upload(gpu.device, l.key.data), value: upload(gpu.device, l.value.data) }));
    const r = gpuKV(c.receiver);
    const s = gpuKV(c.sharer);
    await expect(fuser.fuseBuffers(r, s, 0)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(fuser.fuseBuffers(r, s, c.seq + 100)).rejects.toBeInstanceOf(ShapeMismatchError);
    await expect(fuser.fuseBuffers(r.slice(1), s, c.seq)).rejects.toBeInstanceOf(ShapeMismatchError);
    const out = await fuser.fuseBuffers(r, s, c.seq);
    expect(out).toHaveLength(c.receiver.length);
    out.forEach((l) => (l.key.destroy(), l.value.destroy()));
  });

  it('without a device option and without navigator.gpu (Node), creation fails with WebGPUUnavailableError', async () => {
    expect((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu).toBeUndefined();
    const fx = await loadFixture('gqa_explicit_map');
    await expect(createWebGPUFuser(fx.weights)).rejects.toBeInstanceOf(WebGPUUnavailableError);
  });

  it('an already-aborted signal rejects with AbortError before any GPU work', async () => {
    const ac = new AbortController();
    ac.abort(new Error('user cancelled'));
    await expect(fuser.fuse(c.receiver, c.sharer, { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError', code: 'ABORTED' });
  });

  it("refuses dtype 'f16' on a device without shader-f16", async () => {
    if (gpu.device.features.has('shader-f16')) return; // only meaningful on f16-less devices such as SwiftShader
    const fx = await loadFixture('gqa_explicit_map');
    await expect(createWebGPUFuser(fx.weights, { device: gpu.device, dtype: 'f16' })).rejects.toBeInstanceOf(WebGPUUnavailableError);
  });

  it('a device lost mid-run rejects with DeviceLostError and returns nothing; later calls fail fast', async () => {
    const pending = fuser.fuse(c.receiver, c.sharer);
    gpu.device.destroy();
    const err = await pending.then(
      (v) => v,
      (e) => e,
    );
    expect(err).toBeInstanceOf(DeviceLostError);
    await expect(fuser.fuse(c.receiver, c.sharer)).rejects.toBeInstanceOf(DeviceLostError);
    fuser.dispose();
    await expect(fuser.fuse(c.receiver, c.sharer)).rejects.toBeInstanceOf(DisposedError);
  });
});
