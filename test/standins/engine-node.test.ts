/**
 * The Hub preset path on the reduced stand-ins (2 layers, real KV / vocab / tokenizer / fuser widths), in
 * Node: `presetEngineOptions(preset, { remoteHost })` against a local Hub mirror, so both models come in as
 * remote Hub ids through transformers.js and the released fuser folder (official layout) by URL with byte
 * progress — the code a Hub user runs, nothing resolved from a local path. Every mode, every flavour
 * (fp32 and q8: float32 KV; fp16: float16 KV end to end), the cross-tokenizer Llama sharer through the
 * aligner, and the ONNX CPU fuser against the plain-JS reference on the same cache (two implementations).
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { env } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointFormatError, ModelLoadError } from '../../src/errors';
import { createNodeC2CEngine } from '../../src/node';
import type { PairPreset } from '../../src/presets';
import { FLAVOURS, FLAVOUR_FILE, type Flavour } from '../../src/standins/flavours';
import { GENERATION_MODES, type C2CEngine, type EngineOptions, type FuserLocation, type ProgressEvent } from '../../src/types';
import { HUB_MESSAGES as MESSAGES, KV_TYPE, LLAMA, QWEN, hubOptions as hubOptionsAt, openHubFixture, type HubFixture } from './hub';

let fixture: HubFixture;
beforeAll(async () => {
  fixture = await openHubFixture();
}, 300_000);
afterAll(() => fixture?.close());

const hubOptions = (preset: PairPreset = QWEN, dtype: Flavour = 'fp32', extra: Partial<EngineOptions> = {}) =>
  hubOptionsAt(fixture.hub.url, preset, dtype, extra);

async function withEngine<T>(opts: EngineOptions, run: (e: C2CEngine) => Promise<T>): Promise<T> {
  const engine = await createNodeC2CEngine(opts);
  try {
    return await run(engine);
  } finally {
    await engine.dispose();
  }
}

describe('Hub preset path on the reduced stand-ins (Node, onnxruntime-node)', () => {
  for (const f of FLAVOURS) {
    it(`${f}: every mode through the mirror, ${KV_TYPE[f]} KV, official fuser by URL with byte progress`, async () => {
      const seen = fixture.hub.log.length;
      const progress: ProgressEvent[] = [];
      await withEngine(hubOptions(QWEN, f, { onProgress: (e) => progress.push(e) }), async (engine) => {
        const d = engine.device;
        expect(d.models.receiver).toEqual({ modelDType: f, kvDType: KV_TYPE[f] });
        expect(d.models.sharer).toEqual({ modelDType: f, kvDType: KV_TYPE[f] });
        expect([d.backend, d.fuserBackend, d.fuserFormat, d.fuserFallbackReason]).toEqual(['cpu', 'cpu', 'official', undefined]);
        const results = await engine.compare(MESSAGES, { maxNewTokens: 3, relayMaxTokens: 3 });
        for (const mode of GENERATION_MODES) {
          const r = results[mode];
          expect(r.tokenIds, mode).toHaveLength(3);
          expect(r.finishReason, mode).toBe('length');
        }
        expect(results.c2c.timing.fuseMs).toBeGreaterThan(0);
        expect(results['text-relay'].hint?.tokenIds).toHaveLength(3);
        expect(results.c2c.promptIds).toEqual(results.receiver.promptIds);
      });
      const requests = fixture.hub.log.slice(seen);
      const fetched = (path: string) => requests.some((l) => l.startsWith('GET ') && l.includes(path) && / 20[06]$/.test(l));
      expect(fetched(`onnx-community/Qwen3-0.6B-ONNX/resolve/main/onnx/${FLAVOUR_FILE[f]}`)).toBe(true);
      expect(fetched(`onnx-community/Qwen2.5-0.5B-Instruct/resolve/main/onnx/${FLAVOUR_FILE[f]}`)).toBe(true);
      expect(fetched('nics-efc/C2C_Fuser/resolve/main/qwen3_0.6b+qwen2.5_0.5b_Fuser/final/projector_1.pt')).toBe(true);
      const fuserBytes = progress.filter((e) => e.model === 'fuser' && e.phase === 'download' && e.file === 'final/projector_1.pt');
      expect(fuserBytes.at(-1)?.fileLoaded).toBeGreaterThan(30_000_000);
      expect(fuserBytes.at(-1)?.fileLoaded).toBe(fuserBytes.at(-1)?.fileTotal);
    }, 240_000);
  }

  it('C2C changes the answer: fused cache ≠ the receiver alone; ONNX CPU fuser = plain-JS reference, token for token', async () => {
    const answer = (cpuFuser: 'onnx' | 'reference') =>
      withEngine(hubOptions(QWEN, 'fp32', { cpuFuser }), async (e) => {
        const r = await e.compare(MESSAGES, { maxNewTokens: 6, modes: ['c2c', 'receiver'] });
        return { c2c: r.c2c.tokenIds, receiver: r.receiver.tokenIds };
      });
    const onnx = await answer('onnx');
    const reference = await answer('reference');
    expect(onnx.c2c).toEqual(reference.c2c);
    expect(onnx.receiver).toEqual(reference.receiver);
    expect(onnx.c2c).not.toEqual(onnx.receiver);
  }, 240_000);

  it('Llama sharer (other tokenizer) through the aligner, the checkpoint config turning alignment on', async () => {
    await withEngine(hubOptions(LLAMA, 'fp32'), async (engine) => {
      const r = await engine.compare(MESSAGES, { maxNewTokens: 3, relayMaxTokens: 3, modes: ['c2c', 'text-relay', 'sharer'] });
      for (const mode of ['c2c', 'text-relay', 'sharer'] as const) expect(r[mode].tokenIds, mode).toHaveLength(3);
      // The sharer renders its own (Llama 3) template: ids from the other vocabulary.
      expect(r.sharer.promptIds[0]).toBe(128000);
      expect(r.c2c.promptIds[0]).not.toBe(128000);
    });
    expect(fixture.hub.log.some((l) => l.includes('onnx-community/Llama-3.2-1B-Instruct/resolve/main/onnx/model.onnx'))).toBe(true);
  }, 240_000);

  it('no fuser folder / an unreachable Hub for the models: typed errors; the next engine loads', async () => {
    const base = hubOptions(QWEN, 'fp32');
    const nope = `${fixture.hub.url}nics-efc/C2C_Fuser/resolve/main/nope/`;
    const missing = { ...base, fuser: { ...(base.fuser as FuserLocation), url: nope } };
    await expect(createNodeC2CEngine(missing)).rejects.toThrow(CheckpointFormatError);
    await expect(createNodeC2CEngine(missing)).rejects.toThrow(/nope/);
    // An empty model store: the earlier tests' downloads would otherwise serve the models offline.
    env.cacheDir = mkdtempSync(join(fixture.cacheDir, 'empty-'));
    const unreachable = { ...base, remoteHost: 'http://nonexistent.invalid/' };
    await expect(createNodeC2CEngine(unreachable)).rejects.toThrow(ModelLoadError);
    env.cacheDir = fixture.cacheDir;
    await withEngine(base, async (e) => expect((await e.generate(MESSAGES, { maxNewTokens: 1 })).tokenIds).toHaveLength(1));
  }, 240_000);
});
