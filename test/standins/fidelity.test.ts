/**
 * Numeric fidelity of the stand-in decoders against an independent implementation: test/standins/
 * reference_decoder.py (PyTorch, HF semantics, written from the HF formulas and the ONNX operator spec)
 * runs on the same weights (exported under their HF names) and must give the logits and present K/V that
 * onnxruntime-node gives for every family and flavour, over a left-padded batch of two and a second step
 * continuing from the first step's cache. fp16 and q8 are compared with the reference's emulation of
 * their roundings (float16 casts; ONNX DynamicQuantizeLinear + int8 MatMul).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSafetensors, tensorToFloat32 } from '../../src/fuser/safetensors';
import { FAMILY_TRAITS, STANDIN_MODELS, type StandinModelKey } from '../../src/standins/families';
import { FLAVOURS, type Flavour } from '../../src/standins/flavours';
import { readManifest, type ModelManifest } from '../../src/standins/model-folder';
import { writeReferenceWeights } from '../../src/standins/reference-weights';
import type { ModelArch } from '../../src/presets';
import { NODE_SESSION_OPTIONS } from '../../src/util/ort-node-options';
import { HAS_TORCH, NO_TORCH, PYTHON, asFloat32, ciStandins, modelFile, runStep } from './helpers';

const REFERENCE = join(__dirname, 'reference_decoder.py');
const MODELS = Object.keys(STANDIN_MODELS) as StandinModelKey[];

/**
 * Max |ORT − reference| allowed, relative to max |reference| of the tensor. Measured on the CI variant
 * (x86-64, onnxruntime-node 1.30): fp32 ≤ 7e-7, fp16 ≤ 1e-3 (one float16 ulp ≈ 5e-4 relative), q8 ≤ 2e-7
 * (the int8 products are exact; a DynamicQuantizeLinear rounding flip elsewhere would cost ~1e-4).
 */
const TOLERANCE: Record<Flavour, { logits: number; kv: number }> = {
  fp32: { logits: 1e-5, kv: 1e-5 },
  fp16: { logits: 3e-3, kv: 2e-3 },
  q8: { logits: 2e-3, kv: 5e-4 },
};

const PAD = 0;
/** Row 0 is left-padded by two; step 1 continues both rows by two tokens. */
const STEPS = [
  {
    input_ids: [[PAD, PAD, 791, 6233, 374, 13], [40, 1093, 264, 4221, 11, 1296]],
    attention_mask: [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]],
    position_ids: [[1, 1, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5]],
  },
  {
    input_ids: [[578, 30], [8, 2]],
    attention_mask: [[0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]],
    position_ids: [[4, 5], [6, 7]],
  },
];
/** Query rows whose logits are compared (padded query rows attend to nothing and are left out). */
const VALID_ROWS = [[[0, 2], [0, 3], [0, 4], [0, 5], [1, 0], [1, 1], [1, 2], [1, 3], [1, 4], [1, 5]], [[0, 0], [0, 1], [1, 0], [1, 1]]];

interface Ours {
  logits: Float32Array[];
  present: Map<string, Float32Array>[];
}

function maxRelDiff(a: Float32Array, b: Float32Array): { diff: number; scale: number } {
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { diff: diff / scale, scale };
}

function rows(logits: Float32Array, seq: number, vocab: number, which: number[][]): Float32Array {
  const out = new Float32Array(which.length * vocab);
  which.forEach(([b, s], i) => out.set(logits.subarray((b * seq + s) * vocab, (b * seq + s + 1) * vocab), i * vocab));
  return out;
}

describe.skipIf(!HAS_TORCH)(`stand-in decoders match an independent PyTorch decoder${HAS_TORCH ? '' : ` (skipped: ${NO_TORCH})`}`, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'standin-fidelity-'));
  const ours = new Map<string, Ours>();
  const reference = new Map<string, Map<string, Float32Array>>();
  const archs = new Map<StandinModelKey, ModelArch>();

  beforeAll(async () => {
    const paths = await ciStandins();
    const cases: Record<string, unknown>[] = [];
    for (const key of MODELS) {
      const dir = paths.models[key]!;
      const m = readManifest<ModelManifest>(dir)!;
      const arch = m.key.arch as ModelArch;
      archs.set(key, arch);
      const weights = join(tmp, `${key}.safetensors`);
      writeReferenceWeights(weights, arch, FAMILY_TRAITS[STANDIN_MODELS[key].family], m.key.seed as number);
      for (const f of FLAVOURS) {
        const out = join(tmp, `${key}.${f}.out.safetensors`);
        cases.push({ config: join(dir, 'config.json'), weights, flavour: f, out, steps: STEPS });
        const session = await ort.InferenceSession.create(modelFile(dir, f), NODE_SESSION_OPTIONS);
        const kv = { layers: arch.numLayers, heads: arch.kvHeads, headDim: arch.headDim,
          type: f === 'fp16' ? ('float16' as const) : ('float32' as const) };
        const r: Ours = { logits: [], present: [] };
        let past: Record<string, ort.Tensor> | null = null;
        for (const step of STEPS) {
          const o = await runStep(session, step, past, kv);
          r.logits.push(asFloat32(o.logits).slice());
          r.present.push(new Map(Object.entries(o).filter(([k]) => k.startsWith('present.')).map(([k, t]) => [k, asFloat32(t).slice()])));
          past = o;
        }
        await session.release();
        ours.set(`${key}.${f}`, r);
      }
    }
    const casesFile = join(tmp, 'cases.json');
    writeFileSync(casesFile, JSON.stringify(cases));
    const py = spawnSync(PYTHON, [REFERENCE, casesFile], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    if (py.status !== 0) throw new Error(`reference_decoder.py failed: ${py.stderr}`);
    for (const c of cases) {
      const file = parseSafetensors(new Uint8Array(readFileSync(c.out as string)));
      reference.set((c.out as string).replace(/^.*\/|\.out\.safetensors$/g, ''),
        new Map([...file.tensors].map(([k, t]) => [k, tensorToFloat32(t)])));
    }
  }, 300_000);

  /** Measured max relative differences, written to $STANDINS_FIDELITY_OUT when set (docs/standins.md cites them). */
  const measured: Record<string, { logits: number; kv: number }> = {};
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
    const out = process.env.STANDINS_FIDELITY_OUT;
    if (out) writeFileSync(out, `${JSON.stringify({ variant: 'CI (layers 2, hidden 32)', tolerance: TOLERANCE, measured }, null, 2)}\n`);
  });

  for (const key of MODELS) {
    for (const f of FLAVOURS) {
      it(`${key} ${f}: logits and present K/V, two steps, left padding`, () => {
        const arch = archs.get(key)!;
        const mine = ours.get(`${key}.${f}`)!;
        const ref = reference.get(`${key}.${f}`)!;
        STEPS.forEach((step, s) => {
          const seq = step.input_ids[0].length;
          const refLogits = ref.get(`step${s}.logits`)!;
          expect(refLogits.length).toBe(mine.logits[s].length);
          const lg = maxRelDiff(rows(mine.logits[s], seq, arch.vocabSize, VALID_ROWS[s]),
            rows(refLogits, seq, arch.vocabSize, VALID_ROWS[s]));
          expect(lg.scale, 'logits are not all zero').toBeGreaterThan(0.05);
          const m = (measured[`${key} ${f}`] ??= { logits: 0, kv: 0 });
          m.logits = Math.max(m.logits, lg.diff);
          expect(lg.diff, `step ${s} logits`).toBeLessThan(TOLERANCE[f].logits);
          for (let i = 0; i < arch.numLayers; i++) {
            for (const which of ['key', 'value']) {
              const name = `present.${i}.${which}`;
              const kv = maxRelDiff(mine.present[s].get(name)!, ref.get(`step${s}.${name}`)!);
              expect(mine.present[s].get(name)!.length).toBe(2 * arch.kvHeads * step.attention_mask[0].length * arch.headDim);
              m.kv = Math.max(m.kv, kv.diff);
              expect(kv.diff, `step ${s} ${name}`).toBeLessThan(TOLERANCE[f].kv);
            }
          }
        });
      });
    }
  }
});
