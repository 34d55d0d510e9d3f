/**
 * The Node engine (onnxruntime-node CPU + CPU reference fuser) against the PyTorch golden fixtures: prompt ids
 * and greedy output ids of every mode must be token-identical, including the text-relay hint and relay prompt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeC2CEngine } from '../../src/node';
import type { C2CEngine } from '../../src/types';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB, pairOptions } from './pair';

describe.skipIf(!PAIR)(`Node engine vs PyTorch golden fixtures${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  const pair = PAIR_OR_STUB;
  const g = pair.golden;
  let engine: C2CEngine;

  beforeAll(async () => {
    engine = await createNodeC2CEngine(pairOptions(pair.dir));
  });
  afterAll(async () => engine?.dispose());

  const opts = () => ({ maxNewTokens: g.max_new_tokens, relayMaxTokens: g.hint_max_tokens });

  it('reports the in-process CPU setup', () => {
    expect(engine.device).toMatchObject({ backend: 'cpu', fuserBackend: 'cpu', topology: 'node' });
    expect(engine.device.fallbackReason).toBeUndefined();
    expect(engine.device.fuserFallbackReason).toBeUndefined();
  });

  for (const c of PAIR?.golden.cases ?? []) {
    const messages = [{ role: 'user' as const, content: c.user }];
    it(`case ${c.case}: receiver, sharer and c2c give the golden tokens`, async () => {
      for (const mode of ['receiver', 'sharer', 'c2c'] as const) {
        const r = await engine.generate(messages, { ...opts(), mode });
        expect(r.promptIds, `${mode} prompt ids`).toEqual(c.prompt_ids);
        expect(r.tokenIds, `${mode} output ids`).toEqual(c[mode].output_ids);
        expect(r.finishReason).toBe(c[mode].output_ids.length < g.max_new_tokens ? 'eos' : r.finishReason);
      }
    });

    it(`case ${c.case}: text relay gives the golden hint, relay prompt and answer`, async () => {
      const r = await engine.generate(messages, { ...opts(), mode: 'text-relay' });
      expect(r.hint?.tokenIds).toEqual(c.text_relay.hint_ids);
      expect(r.hint?.text).toBe(c.text_relay.hint_text);
      expect(r.promptIds).toEqual(c.text_relay.relay_prompt_ids);
      expect(r.tokenIds).toEqual(c.text_relay.output_ids);
      expect(r.timing.relayMs).toBeGreaterThan(0);
    });
  }

  it('compare() runs every mode on the same messages and matches the single-mode results', async () => {
    const c = g.cases[0];
    const all = await engine.compare([{ role: 'user', content: c.user }], opts());
    expect(Object.keys(all).sort()).toEqual(['c2c', 'receiver', 'sharer', 'text-relay']);
    expect(all.c2c.tokenIds).toEqual(c.c2c.output_ids);
    expect(all['text-relay'].tokenIds).toEqual(c.text_relay.output_ids);
    expect(all.c2c.timing.fuseMs).toBeGreaterThan(0);
    expect(all.c2c.timing.sharerPrefillMs).toBeGreaterThan(0);
  });
});
