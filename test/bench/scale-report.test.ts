/**
 * bench:scale's arithmetic (scripts/bench-scale-report.mjs) against counts made another way: the Linear
 * FLOPs from the stand-in generator's own weight list (src/standins/decoder-weights.ts, every HF Linear of
 * the decoder), causal attention summed position by position, the paper's ratios from its Table 3 figures.
 */
import { describe, expect, it } from 'vitest';
import { PAPER_TABLE_3, deviceSlug, prefillFlops } from '../../scripts/bench-scale-report.mjs';
import { decoderWeights, numelOf } from '../../src/standins/decoder-weights';
import { FAMILY_TRAITS, STANDIN_MODELS } from '../../src/standins/families';

describe('bench:scale report arithmetic', () => {
  for (const key of ['qwen3-0.6b', 'qwen2.5-0.5b-instruct'] as const) {
    it(`${key}: prefill FLOPs = 2·n·Σ Linear weights + causal attention + LM head rows`, () => {
      const spec = STANDIN_MODELS[key];
      const a = spec.arch;
      const cfg = {
        hidden_size: a.hiddenSize, num_attention_heads: a.numHeads, num_key_value_heads: a.kvHeads, head_dim: a.headDim,
        intermediate_size: a.intermediateSize, num_hidden_layers: a.numLayers, vocab_size: a.vocabSize,
      };
      const linears = decoderWeights(a, FAMILY_TRAITS[spec.family]).filter((w) => w.role === 'linear');
      const linear = linears.reduce((s, w) => s + numelOf(w.shape), 0);
      for (const n of [1, 17, 169]) {
        let attention = 0;
        for (let i = 0; i < n; i++) attention += a.numLayers * 2 * 2 * a.numHeads * a.headDim * (i + 1); // QKᵀ and AV over i+1 keys
        const expected = 2 * n * linear + attention + 2 * a.hiddenSize * a.vocabSize * n;
        const got = prefillFlops(cfg, n);
        expect(Math.abs(got.gflop * 1e9 - expected) / expected, `n=${n}`).toBeLessThan(1e-3);
        expect(prefillFlops(cfg, n, 1).lmHeadGflop).toBeCloseTo((2 * a.hiddenSize * a.vocabSize) / 1e9, 3);
      }
    });
  }

  it("the paper's reference ratios follow from its Table 3 times; the device slug is a file-name-safe string", () => {
    expect(PAPER_TABLE_3.c2cOverReceiver).toBeCloseTo(445 / 308, 2);
    expect(PAPER_TABLE_3.textRelayOverC2C).toBeCloseTo(1596 / 445, 2);
    expect(PAPER_TABLE_3.fusionOverReceiverPrefill).toBeCloseTo(90 / 27, 1);
    expect(deviceSlug()).toMatch(/^[a-z0-9-]+-\d+core$/);
  });
});
