/**
 * The random fusers in the official release layout (nics-efc/C2C_Fuser) at the released widths: PyTorch's
 * own `torch.load(weights_only=True)` reads every projector file with upstream's keys, order, dtypes and
 * shapes and the values we generated (rounded to bfloat16), inside a torch-shaped zip; our
 * loadOfficialCheckpoint reads the folder (dims, layer map, alignment, values); the project-format
 * conversion (int8) loads and stays within int8 error of the official weights.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOfficialCheckpointFromDirectoryWithInfo } from '../../src/checkpoints/node-io';
import { roundThrough } from '../../src/util/half';
import { loadFuserFromDirectory } from '../../src/fuser/format/node-io';
import { parseSafetensors, tensorToFloat32 } from '../../src/fuser/safetensors';
import type { FuserDims } from '../../src/fuser/shapes';
import { findPreset, presetFuserParams } from '../../src/presets';
import { STANDIN_PAIRS, type StandinPaths, type StandinPair } from '../../src/standins/ensure';
import { STANDIN_MODELS, terminalLayerMap } from '../../src/standins/families';
import { projectorStateDict } from '../../src/standins/fuser-release';
import { HAS_TORCH, NO_TORCH, PYTHON, ciStandins, firstDifference } from './helpers';

const PAIRS = Object.keys(STANDIN_PAIRS) as StandinPair[];
const TORCH_CHECK = join(__dirname, 'torch_check.py');

function dimsOf(paths: StandinPaths, pair: StandinPair): FuserDims {
  const arch = (k: keyof typeof STANDIN_MODELS) => JSON.parse(readFileSync(join(paths.models[k]!, 'config.json'), 'utf8'));
  const r = arch(STANDIN_PAIRS[pair].receiver), s = arch(STANDIN_PAIRS[pair].sharer);
  return {
    receiver: { numLayers: r.num_hidden_layers, kvHeads: r.num_key_value_heads, headDim: r.head_dim
      ?? r.hidden_size / r.num_attention_heads },
    sharer: { numLayers: s.num_hidden_layers, kvHeads: s.num_key_value_heads, headDim: s.head_dim
      ?? s.hidden_size / s.num_attention_heads },
    hiddenDim: 1024, intermediateDim: 1024, numMlpLayers: 3,
  };
}

const seedOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'standin.json'), 'utf8')).key.seed as number;

let ci: StandinPaths;
beforeAll(async () => {
  ci = await ciStandins();
}, 300_000);

describe('official-layout fusers', () => {
  it('one projector has the released parameter count (17,066,002 for Qwen3-0.6B ← Qwen2.5-0.5B)', () => {
    for (const pair of PAIRS) {
      const p = findPreset(pair)!;
      const r = STANDIN_MODELS[STANDIN_PAIRS[pair].receiver].arch, s = STANDIN_MODELS[STANDIN_PAIRS[pair].sharer].arch;
      const dims: FuserDims = { receiver: { numLayers: r.numLayers, kvHeads: r.kvHeads, headDim: r.headDim },
        sharer: { numLayers: s.numLayers, kvHeads: s.kvHeads, headDim: s.headDim }, hiddenDim: 1024, intermediateDim: 1024,
        numMlpLayers: 3 };
      const params = projectorStateDict(dims, 1, 1).filter((t) => t.name !== 'gate_temperature').reduce((n, t) => n + t.values.length, 0);
      expect(params * r.numLayers).toBe(presetFuserParams(p));
      if (pair === 'qwen3-0.6b+qwen2.5-0.5b') expect(params).toBe(17_066_002); // c2c-reference §1.2 (upstream's count)
    }
  });

  for (const pair of PAIRS) {
    it(`${pair}: loadOfficialCheckpoint reads the folder (dims, terminal map, alignment, bf16 values)`, async () => {
      const dir = ci.fusers[pair]!;
      const dims = dimsOf(ci, pair);
      const { weights, info } = await loadOfficialCheckpointFromDirectoryWithInfo(dir);
      const c = weights.config;
      expect([c.receiver, c.sharer, c.hiddenDim, c.intermediateDim, c.numMlpLayers]).toEqual([dims.receiver, dims.sharer, 1024, 1024, 3]);
      expect(c.layerMap).toEqual(terminalLayerMap(dims.receiver.numLayers, dims.sharer.numLayers));
      expect(c.dtype).toBe('bfloat16');
      expect(c.alignment?.enabled).toBe(pair === 'qwen3-0.6b+llama3.2-1b');
      if (c.alignment?.enabled) expect(c.alignment.strategy).toBe('longest');
      expect([info.baseModel, info.teacherModel]).toEqual([STANDIN_MODELS[STANDIN_PAIRS[pair].receiver].sourceId,
        STANDIN_MODELS[STANDIN_PAIRS[pair].sharer].sourceId]);
      const seed = seedOf(dir);
      weights.layers.forEach((layer, i) => {
        const sd = new Map(projectorStateDict(dims, i, seed).map((t) => [t.name, roundThrough(t.values, 'bfloat16')]));
        expect(firstDifference(layer.key.in.weight, sd.get('key_in.weight')!)).toBeNull();
        expect(firstDifference(layer.value.projMlp2[0].w2.weight, sd.get('value_proj_mlp2.blocks.0.w2.weight')!)).toBeNull();
        expect(firstDifference(layer.key.scalarHead.bias!, sd.get('key_scalar_head.bias')!)).toBeNull();
        expect([layer.key.gateLogit, layer.value.gateLogit]).toEqual([1, i === 0 ? -1 : 1]);
      });
    });
  }

  it('the int8 conversion (src/cli/convert.ts) loads and is within int8 error of the official weights', async () => {
    for (const pair of PAIRS) {
      const converted = await loadFuserFromDirectory(ci.converted[pair]!.int8!);
      const official = (await loadOfficialCheckpointFromDirectoryWithInfo(ci.fusers[pair]!)).weights;
      expect(converted.config.dtype).toBe('int8');
      expect(converted.config.layerMap).toEqual(official.config.layerMap);
      const a = converted.layers[1].key.in.weight, b = official.layers[1].key.in.weight;
      let err = 0, max = 0;
      for (let i = 0; i < a.length; i++) {
        err = Math.max(err, Math.abs(a[i] - b[i]));
        max = Math.max(max, Math.abs(b[i]));
      }
      expect(err).toBeGreaterThan(0);
      expect(err).toBeLessThan(max / 127);
    }
  });
});

describe.skipIf(!HAS_TORCH)(`torch.load(weights_only=True) reads every projector file${HAS_TORCH ? '' : ` (skipped: ${NO_TORCH})`}`, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'standin-torch-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  for (const pair of PAIRS) {
    it(`${pair}: keys in upstream order, bfloat16, shapes, values, torch zip layout`, () => {
      const dir = ci.fusers[pair]!;
      const dims = dimsOf(ci, pair);
      const out = mkdtempSync(join(tmp, 'p-'));
      const files = readdirSync(join(dir, 'final')).filter((f) => f.endsWith('.pt')).sort();
      expect(files).toEqual(Array.from({ length: dims.receiver.numLayers }, (_, i) => `projector_${i}.pt`).sort());
      const py = spawnSync(PYTHON, [TORCH_CHECK, out, ...files.map((f) => join(dir, 'final', f))], { encoding: 'utf8' });
      expect(py.status, py.stderr).toBe(0);
      const seed = seedOf(dir);
      for (let i = 0; i < files.length; i++) {
        const info = JSON.parse(readFileSync(join(out, `projector_${i}.json`), 'utf8'));
        const want = projectorStateDict(dims, i, seed);
        expect(info.type).toBe('collections.OrderedDict');
        expect(info.keys).toEqual(want.map((t) => t.name));
        for (const t of want) {
          expect(info.dtypes[t.name], t.name).toBe('torch.bfloat16');
          expect(info.shapes[t.name], t.name).toEqual(t.shape);
        }
        expect(info.metadata.slice(0, 3)).toEqual(['', 'key_in', 'key_mlp1']);
        const names = info.zip.map((z: { name: string }) => z.name);
        const storages = want.map((_, k) => `projector_${i}/data/${k}`).sort();
        expect(names).toEqual([`projector_${i}/data.pkl`, `projector_${i}/byteorder`, ...storages, `projector_${i}/version`]);
        expect(info.zip.every((z: { aligned64: boolean; compress_type: number }) => z.aligned64 && z.compress_type === 0)).toBe(true);
        const loaded = parseSafetensors(new Uint8Array(readFileSync(join(out, `projector_${i}.safetensors`)))).tensors;
        for (const t of want) expect(firstDifference(tensorToFloat32(loaded.get(t.name)!), roundThrough(t.values, 'bfloat16')),
          t.name).toBeNull();
      }
    });
  }
});
