/**
 * ensureStandins regenerates only what is absent or stale: a second call keeps everything, a deleted file
 * or a manifest from other options regenerates that folder only, a new flavour is added without touching
 * the others, concurrent calls generate once, and bad options are typed errors.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { ensureStandins, variantName, type StandinOptions } from '../../src/standins/ensure';

const out = mkdtempSync(join(tmpdir(), 'standin-ensure-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const TINY: StandinOptions = { out, layers: 1, hidden: 16, pairs: ['qwen3-0.6b+qwen2.5-0.5b'], flavours: ['q8'], fusers: false };
const generated = (p: { parts: { path: string; generated: boolean }[] }) => p.parts.filter((x) => x.generated).map((x) => x.path);
const mtime = (f: string) => statSync(f).mtimeMs;

describe('ensureStandins', () => {
  it('generates once, then keeps; regenerates only a damaged or stale folder; adds a flavour alone', async () => {
    const first = await ensureStandins(TINY);
    expect(generated(first)).toEqual(['onnx-community/Qwen3-0.6B-ONNX', 'onnx-community/Qwen2.5-0.5B-Instruct']);
    expect(first.root).toBe(join(out, variantName(TINY)));
    const qwen3 = join(first.models['qwen3-0.6b']!, 'onnx/model_quantized.onnx');
    const qwen25 = join(first.models['qwen2.5-0.5b-instruct']!, 'onnx/model_quantized.onnx');
    const report = JSON.parse(readFileSync(join(first.root, 'standins.json'), 'utf8'));
    expect(report.parts).toHaveLength(2);

    expect(generated(await ensureStandins(TINY))).toEqual([]);

    unlinkSync(qwen25);
    const t3 = mtime(qwen3);
    expect(generated(await ensureStandins(TINY))).toEqual(['onnx-community/Qwen2.5-0.5B-Instruct']);
    expect(existsSync(qwen25)).toBe(true);
    expect(mtime(qwen3)).toBe(t3);

    // A manifest written for other options (here: another seed) is stale.
    const manifestPath = join(first.models['qwen3-0.6b']!, 'standin.json');
    const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
    writeFileSync(manifestPath, JSON.stringify({ ...m, key: { ...m.key, seed: m.key.seed + 1 } }));
    expect(generated(await ensureStandins(TINY))).toEqual(['onnx-community/Qwen3-0.6B-ONNX']);

    const t25 = mtime(qwen25);
    const more = await ensureStandins({ ...TINY, flavours: ['q8', 'fp32'] });
    expect(generated(more)).toHaveLength(2);
    expect(mtime(qwen25)).toBe(t25);
    expect(existsSync(join(more.models['qwen2.5-0.5b-instruct']!, 'onnx/model.onnx'))).toBe(true);
    const cfg = JSON.parse(readFileSync(join(more.models['qwen2.5-0.5b-instruct']!, 'config.json'), 'utf8'));
    expect(cfg.num_hidden_layers).toBe(1);
    expect(cfg.hidden_size).toBe(16);
  });

  it('concurrent calls for the same variant generate it once', async () => {
    const opts = { ...TINY, seed: 7 };
    const [a, b] = await Promise.all([ensureStandins(opts), ensureStandins(opts)]);
    expect([generated(a).length, generated(b).length].sort()).toEqual([0, 2]);
    expect(a.root).toBe(b.root);
    expect(a.root).not.toBe(join(out, variantName(TINY)));
  });

  it('rejects bad options with InvalidInputError before writing anything', async () => {
    const before = readdirSync(out).sort();
    for (const bad of [{ layers: 0 }, { hidden: 2.5 }, { pairs: ['qwen3-0.6b+nope'] }, { flavours: ['q4'] },
      { layers: undefined, sharerLayers: 2 }]) {
      const o = { ...TINY, ...bad } as StandinOptions;
      await expect(ensureStandins(o), JSON.stringify(bad)).rejects.toBeInstanceOf(InvalidInputError);
    }
    expect(readdirSync(out).sort()).toEqual(before);
  });
});
