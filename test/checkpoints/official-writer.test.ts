/**
 * The PyTorch-free official-folder writer (test/checkpoints/official-writer.ts) that the fuzz, memory and
 * engine tests build their checkpoints with: torch.load (Debian's torch, when present) reads every file it
 * writes with the expected keys, shapes, dtypes and values, and our loader gives back the weights it was given.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOfficialCheckpoint } from '../../src/checkpoints/official';
import { randomFuserWeights } from '../../src/fuser/random-weights';
import { officialFolderEntries, officialFolderFiles, projectorTensors, writeOfficialFolder } from './official-writer';

const PYTHON = '/usr/bin/python3';
const hasTorch = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

describe('official-folder writer', () => {
  const weights = randomFuserWeights(11, { numMlpLayers: 4, hiddenDim: 16, intermediateDim: 24 });

  it('round-trips through our loader exactly (float32 storages)', async () => {
    const back = await loadOfficialCheckpoint(officialFolderFiles(weights, { dtype: 'float32' }));
    expect(back.config.layerMap).toEqual(weights.config.layerMap);
    expect(back.layers[1].value.projMlp2[1].w2.weight).toEqual(weights.layers[1].value.projMlp2[1].w2.weight);
    expect(back.layers[2].key.in.bias).toEqual(weights.layers[2].key.in.bias);
    expect(back.layers[0].value.gateLogit).toBe(weights.layers[0].value.gateLogit);
  });

  it.skipIf(!hasTorch)('writes files torch.load reads, with the same keys, shapes, dtypes and values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'c2c-writer-'));
    try {
      writeOfficialFolder(dir, officialFolderEntries(weights.config, (i) => weights.layers[i], { dtype: 'bfloat16' }));
      const script = [
        'import json, sys, torch',
        'out = {}',
        'for i in range(int(sys.argv[2])):',
        '    sd = torch.load(f"{sys.argv[1]}/final/projector_{i}.pt")',
        '    out[i] = {k: [list(v.shape), str(v.dtype), float(v.double().sum())] for k, v in sd.items()}',
        'print(json.dumps(out))',
      ].join('\n');
      const r = spawnSync(PYTHON, ['-c', script, dir, String(weights.layers.length)], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const seen = JSON.parse(r.stdout) as Record<string, Record<string, [number[], string, number]>>;
      weights.layers.forEach((layer, i) => {
        const ours = projectorTensors(layer, weights.config);
        expect(Object.keys(seen[i]).sort()).toEqual(ours.map((t) => t.name).sort());
        for (const t of ours) {
          const [shape, dtype, sum] = seen[i][t.name];
          expect(shape, t.name).toEqual(t.shape);
          expect(dtype).toBe('torch.bfloat16');
          // bf16 keeps 8 mantissa bits: the sum moves by at most 2^-8 of the magnitudes summed.
          const mag = t.data.reduce((a, v) => a + Math.abs(v), 0);
          expect(Math.abs(sum - t.data.reduce((a, v) => a + v, 0)), t.name).toBeLessThanOrEqual(mag * 2 ** -8 + 1e-12);
        }
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
