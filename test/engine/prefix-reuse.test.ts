/**
 * Exact multi-turn prefix reuse: over an 8-turn chat (each turn's history holds the earlier answers), an engine
 * that reuses the cached prefix gives token-identical answers to one that prefills and fuses the whole history
 * every call, in every mode, for the same-tokenizer pair and the cross-tokenizer pair (aligner); from turn 2 on
 * the reuse engine really reuses (receiver, sharer and fused token counts > 0); memory stays bounded (one
 * conversation: at most three kept KVs) and a new conversation replaces the old one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createNodeC2CEngine } from '../../src/node';
import { GENERATION_MODES, type C2CEngine, type ChatMessage, type EngineOptions, type GenerationMode } from '../../src/types';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB, pairOptions } from './pair';

const TURNS = 8;
const QUESTIONS = [
  'Which city does Mibrar live in?\nAnswer with one word.',
  'What pet does Dabar have?\nAnswer with one word.',
  'What is the job of Shuron?\nAnswer with one word.',
  'Which city does Dabar live in?\nAnswer with one word.',
];

/** Runs the same chat through both engines turn by turn; returns per-turn reuse counts of `reusing`. */
async function chat(reusing: C2CEngine, fresh: C2CEngine, mode: GenerationMode) {
  const history: ChatMessage[] = [];
  const reused = [];
  for (let t = 0; t < TURNS; t++) {
    history.push({ role: 'user', content: QUESTIONS[t % QUESTIONS.length] });
    const a = await reusing.generate(history, { mode, maxNewTokens: 6 });
    const b = await fresh.generate(history, { mode, maxNewTokens: 6 });
    expect(a.promptIds, `${mode} turn ${t + 1}`).toEqual(b.promptIds);
    expect(a.tokenIds, `${mode} turn ${t + 1}`).toEqual(b.tokenIds);
    expect(b.reused).toEqual({ receiver: 0, sharer: 0, fused: 0 });
    reused.push(a.reused);
    history.push({ role: 'assistant', content: a.text });
  }
  return reused;
}

/**
 * An engine over two separate in-process hosts, one per model: the data path of the browser's workers topology
 * (the sharer's KV is returned by its host and handed to the receiver's host for fusion).
 */
async function twoHostEngine(o: EngineOptions): Promise<C2CEngine> {
  const { ModelHost } = await import('../../src/hosts/model-host');
  const { nodePlatform } = await import('../../src/hosts/node-platform');
  const { Engine } = await import('../../src/engine/engine');
  const { loadPair, deviceReport } = await import('../../src/engine/assemble');
  const make = async () => {
    const h = new ModelHost(nodePlatform());
    await h.init({ device: 'cpu', allowRemoteModels: false, shareDevice: false, topology: 'node' });
    return h;
  };
  const hosts = { sharer: await make(), receiver: await make() };
  const loaded = await loadPair(hosts, o, { url: o.fuser as string });
  return new Engine({
    hosts: async () => hosts, device: deviceReport(loaded, 'workers', o.prefixReuse !== false), modelId: 'c2c-tiny',
      prefixReuse: o.prefixReuse,
    info: { sharer: loaded.sharer.info, receiver: loaded.receiver.info }, fuser: loaded.fuser.config,
    dispose: async () => { await hosts.sharer.dispose(); await hosts.receiver.dispose(); },
  });
}

function pairSuite(label: string, opts: () => EngineOptions, skip: string | undefined,
  create: (o: EngineOptions) => Promise<C2CEngine> = createNodeC2CEngine) {
  describe.skipIf(!!skip)(`prefix reuse, ${label}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let reusing: C2CEngine;
    let fresh: C2CEngine;
    beforeAll(async () => {
      reusing = await create(opts());
      fresh = await create({ ...opts(), prefixReuse: false });
    });
    afterAll(async () => {
      await reusing?.dispose();
      await fresh?.dispose();
    });

    it('reports whether reuse is on', () => {
      expect(reusing.device.prefixReuse).toBe(true);
      expect(fresh.device.prefixReuse).toBe(false);
    });

    for (const mode of GENERATION_MODES) {
      it(`${mode}: token-identical to re-running the whole history, reusing from turn 2`, async () => {
        const reused = await chat(reusing, fresh, mode);
        for (let t = 1; t < TURNS; t++) {
          const r = reused[t];
          if (mode === 'c2c') {
            expect(r.receiver, `turn ${t + 1}`).toBeGreaterThan(0);
            expect(r.sharer, `turn ${t + 1}`).toBeGreaterThan(0);
            expect(r.fused, `turn ${t + 1}`).toBeGreaterThan(0);
          } else expect(mode === 'sharer' ? r.sharer : r.receiver, `turn ${t + 1}`).toBeGreaterThan(0);
        }
      });
    }
  });
}

const pair = PAIR_OR_STUB;
pairSuite('same tokenizer (c2c-tiny)', () => pairOptions(pair.dir), PAIR ? undefined : NO_PAIR_REASON);

pairSuite('same tokenizer, one host per model (the workers data path)', () => pairOptions(pair.dir), PAIR ? undefined : NO_PAIR_REASON, twoHostEngine);

const hetero = PAIR && existsSync(path.join(pair.dir, 'fuser_b/fuser.json')) && existsSync(path.join(pair.dir, 'sharer_b/onnx/model.onnx'));
pairSuite('cross-tokenizer (sharer_b through the aligner)', () => ({
  sharer: { id: 'sharer_b', localPath: pair.dir },
  receiver: { id: 'receiver', localPath: pair.dir },
  fuser: path.join(pair.dir, 'fuser_b'),
}), hetero ? undefined : 'no sharer_b / fuser_b in the pair folder');

describe.skipIf(!PAIR)('prefix reuse memory', () => {
  it('keeps one conversation: a different conversation replaces the cached KVs instead of adding to them', async () => {
    const { ModelHost } = await import('../../src/hosts/model-host');
    const { nodePlatform } = await import('../../src/hosts/node-platform');
    const { Engine } = await import('../../src/engine/engine');
    const { loadPair, deviceReport } = await import('../../src/engine/assemble');
    const host = new ModelHost(nodePlatform());
    await host.init({ device: 'cpu', allowRemoteModels: false, shareDevice: false, topology: 'node' });
    const o = pairOptions(pair.dir);
    const loaded = await loadPair({ sharer: host, receiver: host }, o, { url: o.fuser });
    const engine = new Engine({
      hosts: async () => ({ sharer: host, receiver: host }), device: deviceReport(loaded, 'node'), modelId: 'c2c-tiny',
      info: { sharer: loaded.sharer.info, receiver: loaded.receiver.info }, fuser: loaded.fuser.config, dispose: () => host.dispose(),
    });
    try {
      for (const q of QUESTIONS) {
        await engine.generate([{ role: 'user', content: q }], { mode: 'c2c', maxNewTokens: 4 });
        expect(host.keptHandles).toBe(3);
        await engine.generate([{ role: 'user', content: q }], { mode: 'receiver', maxNewTokens: 4 });
        expect(host.keptHandles).toBe(3); // the receiver's cached prompt replaced, the sharer's and the fused kept
      }
      await engine.resetChat();
      expect(host.keptHandles).toBe(0);
      const again = await engine.generate([{ role: 'user', content: QUESTIONS[0] }], { mode: 'c2c', maxNewTokens: 4 });
      expect(again.reused).toEqual({ receiver: 0, sharer: 0, fused: 0 });
    } finally {
      await engine.dispose();
    }
    expect(host.keptHandles).toBe(0);
  });
});
