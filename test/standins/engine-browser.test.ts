/**
 * The Hub preset path on the reduced stand-ins in headless Chromium: the browser engine (one Web Worker per
 * model, wasm) loads both models as remote Hub ids and the released fuser folder (official layout) by URL from
 * a local Hub mirror on another origin (CORS, as huggingface.co serves them). Every mode for every flavour
 * (fp16: float16 KV across the workers), the Llama sharer through the aligner, and the same tokens as the Node
 * engine (onnxruntime-node) on the same files — two runtimes, one answer.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeC2CEngine } from '../../src/node';
import type { PairPreset } from '../../src/presets';
import { FLAVOURS, type Flavour } from '../../src/standins/flavours';
import type { EngineOptions, GenerationMode } from '../../src/types';
import { openTestPage, type TestPage } from '../browser-engine/server';
import { PAIR_OR_STUB } from '../engine/pair';
import { HUB_MESSAGES as MESSAGES, KV_TYPE, LLAMA, QWEN, hubOptions as hubOptionsAt, openHubFixture, type HubFixture } from './hub';

const ALL: GenerationMode[] = ['c2c', 'text-relay', 'receiver', 'sharer'];

let fixture: HubFixture;
let tp: TestPage | undefined;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  fixture = await openHubFixture();
  tp = await openTestPage(PAIR_OR_STUB, {
    outDir: 'test-results/browser-standins-dist',
    onPage: (p) => p.on('pageerror', (e) => pageErrors.push(e.message)),
  });
  page = tp.page;
}, 600_000);
afterAll(async () => {
  await tp?.close();
  await fixture?.close();
});

const hubOptions = (preset: PairPreset, dtype: Flavour) => hubOptionsAt(fixture.hub.url, preset, dtype, { device: 'wasm' });

interface BrowserRun {
  device: { backend: string; fuserBackend: string; topology: string; fuserFormat?: string; models: Record<string, unknown> };
  out: Record<string, { tokenIds: number[]; promptIds: number[]; finishReason: string }>;
  fuserBytes: number;
}

function runInPage(opts: EngineOptions, modes: GenerationMode[]): Promise<BrowserRun> {
  return page.evaluate(async ({ opts, modes, messages }) => {
    let fuserBytes = 0;
    const engine = await window.c2c.createC2CEngine({
      ...opts,
      onProgress: (e) => {
        if (e.model === 'fuser' && e.phase === 'download' && e.fileLoaded !== undefined) fuserBytes = Math.max(fuserBytes, e.loaded);
      },
    });
    try {
      const out: BrowserRun['out'] = {};
      for (const mode of modes) {
        const r = await engine.generate(messages, { mode, maxNewTokens: 3, relayMaxTokens: 3 });
        out[mode] = { tokenIds: r.tokenIds, promptIds: r.promptIds, finishReason: r.finishReason };
      }
      return { device: engine.device, out, fuserBytes };
    } finally {
      await engine.dispose();
    }
  }, { opts, modes, messages: MESSAGES });
}

async function runInNode(opts: EngineOptions, modes: GenerationMode[]): Promise<Record<string, number[]>> {
  const engine = await createNodeC2CEngine({ ...opts, device: 'cpu' });
  try {
    const out: Record<string, number[]> = {};
    for (const mode of modes) out[mode] = (await engine.generate(MESSAGES, { mode, maxNewTokens: 3, relayMaxTokens: 3 })).tokenIds;
    return out;
  } finally {
    await engine.dispose();
  }
}

describe('Hub preset path on the reduced stand-ins (Chromium, workers on wasm)', () => {
  for (const f of FLAVOURS) {
    it(`${f}: every mode, ${KV_TYPE[f]} KV, official fuser by URL; same tokens as the Node engine`, async () => {
      const opts = hubOptions(QWEN, f);
      const run = await runInPage(opts, ALL);
      expect(run.device).toMatchObject({ backend: 'wasm', fuserBackend: 'cpu', topology: 'workers', fuserFormat: 'official' });
      const dtypes = { modelDType: f, kvDType: KV_TYPE[f] };
      expect(run.device.models).toEqual({ receiver: dtypes, sharer: dtypes });
      expect(run.fuserBytes).toBeGreaterThan(60_000_000);
      for (const mode of ALL) expect(run.out[mode].tokenIds, mode).toHaveLength(3);
      const node = await runInNode(opts, ALL);
      for (const mode of ALL) expect(run.out[mode].tokenIds, `${f} ${mode}: Chromium wasm vs onnxruntime-node`).toEqual(node[mode]);
      expect(pageErrors).toEqual([]);
    }, 300_000);
  }

  it('Llama sharer through the aligner: C2C and text relay in workers', async () => {
    const run = await runInPage(hubOptions(LLAMA, 'q8'), ['c2c', 'text-relay']);
    expect(run.out.c2c.tokenIds).toHaveLength(3);
    expect(run.out['text-relay'].tokenIds).toHaveLength(3);
    const llamaFile = 'onnx-community/Llama-3.2-1B-Instruct/resolve/main/onnx/model_quantized.onnx';
    expect(fixture.hub.log.some((l) => l.includes(llamaFile))).toBe(true);
  }, 300_000);
});
