import { describe, expect, it } from 'vitest';
import { MemoryBudgetError } from '../src/errors';
import { checkMemoryBudget, estimateMemory, estimateKVBytes, maxContextThatFits } from '../src/memory';
import { HUB_PRESETS, decoderParams, findPreset, presetEngineOptions, presetFuserParams } from '../src/presets';

const pair = findPreset('qwen3-0.6b+qwen2.5-0.5b')!;
const GiB = 1024 ** 3;
const bigAdapter = { maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 4 * GiB };

describe('presets', () => {
  it('reproduce the published parameter counts', () => {
    // Paper Table 6: 478M fuser params for Qwen3-0.6B ← Qwen2.5-0.5B; c2c-reference §1.2: 477.8M.
    expect(presetFuserParams(pair)).toBe(477_848_056);
    // Qwen3-0.6B ≈ 0.6B, Qwen2.5-0.5B ≈ 0.49B (public model cards).
    expect(decoderParams(pair.receiver.arch) / 1e6).toBeGreaterThan(590);
    expect(decoderParams(pair.receiver.arch) / 1e6).toBeLessThan(600);
    expect(decoderParams(pair.sharer.arch) / 1e6).toBeGreaterThan(490);
    expect(decoderParams(pair.sharer.arch) / 1e6).toBeLessThan(500);
  });

  it('all run Qwen3 without thinking (the chat template option reaches both models of the engine options)', () => {
    for (const p of HUB_PRESETS) {
      expect(p.chatTemplateOptions).toEqual({ enable_thinking: false });
      const o = presetEngineOptions(p);
      expect(o.receiver.chatTemplateOptions).toEqual({ enable_thinking: false });
      expect(o.sharer.chatTemplateOptions).toEqual({ enable_thinking: false });
      expect(o.fuser).toEqual({
        url: `https://huggingface.co/${(p.fuser as { repo: string }).repo}/resolve/main/${(p.fuser as { folder: string }).folder}/`,
        format: 'official',
        sharerNumLayers: p.sharer.arch.numLayers,
      });
      expect(o.allowRemoteModels).toBe(true);
    }
  });
});

describe('memory budget', () => {
  it('counts KV as layers × 2 × heads × head_dim × tokens × bytes', () => {
    // Qwen3-0.6B: 28 × 2 × 8 × 128 × 4 bytes = 229,376 bytes per token in f32 (platform notes: ≈229 KB/token).
    expect(estimateKVBytes(pair.receiver.arch, 1, 'float32')).toBe(229_376);
    const e = estimateMemory(pair, { contextLength: 1000, fuserDType: 'float16' });
    expect(e.fusedKVBytes).toBe(229_376_000);
    // f16 GPU layout = 2 bytes per parameter, less the 56 gate logits that stay on the host.
    expect(e.fuserWeightsBytes).toBe((477_848_056 - 28 * 2) * 2);
    const int8 = estimateMemory(pair, { contextLength: 1000, fuserDType: 'int8' });
    expect(int8.fuserWeightsBytes / e.fuserWeightsBytes).toBeLessThanOrEqual(0.55);
    expect(e.totalBytes).toBeGreaterThan(e.receiverWeightsBytes + e.sharerWeightsBytes + e.fuserWeightsBytes);
  });

  it('accepts a setup that fits and returns the estimate', () => {
    const e = checkMemoryBudget(pair, { contextLength: 2048, modelDType: 'q4f16' }, { ...bigAdapter, budgetBytes: 8 * GiB });
    expect(e.totalBytes).toBeLessThan(8 * GiB);
  });

  it('refuses a budget that is too small and says which context would fit', () => {
    const limits = { ...bigAdapter, budgetBytes: 3 * GiB };
    const opts = { contextLength: 32768, modelDType: 'fp16' as const, fuserDType: 'float16' as const };
    let err: unknown;
    try {
      checkMemoryBudget(pair, opts, limits);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MemoryBudgetError);
    const fit = (err as MemoryBudgetError).details.maxContextThatFits as number;
    expect(fit).toBeGreaterThan(0);
    expect(fit).toBeLessThan(32768);
    expect((err as Error).message).toMatch(new RegExp(`at most ${fit} tokens`));
    // The suggested context really fits, one more token does not.
    expect(() => checkMemoryBudget(pair, { ...opts, contextLength: fit }, limits)).not.toThrow();
    expect(() => checkMemoryBudget(pair, { ...opts, contextLength: fit + 1 }, limits)).toThrow(MemoryBudgetError);
  });

  it('refuses a single buffer above the adapter limit, naming it and suggesting smaller dtypes', () => {
    // Default WebGPU limits (128 MiB binding) cannot hold Qwen3's fp32 embedding table (≈594 MiB).
    const small = { maxBufferSize: 256 * 1024 ** 2, maxStorageBufferBindingSize: 128 * 1024 ** 2 };
    expect(() => checkMemoryBudget(pair, { contextLength: 512, modelDType: 'fp32' },
      small)).toThrow(/embedding table needs .* in one buffer/);
    expect(maxContextThatFits(pair, { modelDType: 'fp32' }, small)).toBe(0);
    expect(() => checkMemoryBudget(pair, { contextLength: 512, modelDType: 'fp32' }, small)).toThrow(/What would fit: models q4f16/);
  });
});
