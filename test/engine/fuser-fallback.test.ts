/**
 * A fuser fallback is reported, never silent, and the engine still answers: in Node, onnxruntime-node failing to
 * import (mocked here; transformers.js loads its own copy outside vitest's module graph, so the models still run)
 * gives the plain-JS reference fuser, `device.fuserFallbackReason` says why, and c2c gives the golden tokens.
 * In the browser platform (run here in Node), a WebGPU fuser that cannot be built on the device falls back to
 * the CPU fuser with the reason. The real browser case (SwiftShader) is in test/browser-engine/engine.test.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import path from 'node:path';
import { createNodeC2CEngine } from '../../src/node';
import { browserPlatform } from '../../src/hosts/browser-platform';
import { randomFuserWeights } from '../../src/fuser/random-weights';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB } from './pair';

vi.mock('onnxruntime-node', () => {
  // vitest reports a throwing factory as its own error ("There was an error when mocking a module").
  throw new Error('planted: onnxruntime-node cannot be loaded');
});

describe.skipIf(!PAIR)(`Node: onnxruntime-node missing${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  const pair = PAIR_OR_STUB;
  const c = pair.golden.cases[0];

  it('reports the reference-fuser fallback and still gives the golden c2c tokens', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const engine = await createNodeC2CEngine({
      sharer: { id: 'sharer', localPath: pair.dir },
      receiver: { id: 'receiver', localPath: pair.dir },
      fuser: path.join(pair.dir, 'fuser'),
    });
    try {
      expect(engine.device).toMatchObject({ backend: 'cpu', fuserBackend: 'cpu', fallbackReason: undefined });
      expect(engine.device.fuserFallbackReason).toMatch(/^onnxruntime-node unavailable, using the plain-JS reference fuser: ./);
      expect(warn).toHaveBeenCalledWith(engine.device.fuserFallbackReason);
      const r = await engine.generate([{ role: 'user', content: c.user }], { mode: 'c2c', maxNewTokens: pair.golden.max_new_tokens });
      expect(r.tokenIds).toEqual(c.c2c.output_ids);
    } finally {
      warn.mockRestore();
      await engine.dispose();
    }
  });
});

describe('browser platform: the WebGPU fuser failing on the device', () => {
  it('falls back to the CPU fuser with the reason', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const platform = browserPlatform();
      await platform.resolveDevice({ device: 'wasm', allowRemoteModels: false, shareDevice: true, topology: 'single', cpuFuser: 'reference' });
      // A device that cannot take the fuser: no limits, no features (as if lost or too small).
      const broken = { limits: {}, features: new Set(), lost: new Promise(() => undefined) } as unknown as GPUDevice;
      const weights = randomFuserWeights(5);
      const { fuser, fallbackReason } = await platform.createFuser(weights, { backend: 'webgpu', shaderF16: false, gpuDevice: broken });
      expect(fuser.backend).toBe('cpu');
      expect(fallbackReason).toMatch(/^WebGPU fuser failed, using the CPU fuser: ./);
      const none = await platform.createFuser(weights, { backend: 'wasm', shaderF16: false });
      expect(none.fallbackReason).toBeUndefined();
    } finally {
      warn.mockRestore();
    }
  });
});
