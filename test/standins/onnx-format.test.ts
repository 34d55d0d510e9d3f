/**
 * The stand-in ONNX files as the onnx package (Python, independent of our protobuf writer) reads them:
 * check_model(full_check=True) passes (structure and shape inference), ir_version 8 / opset 17, only
 * default-domain ops, onnx-community's input/output names, element types and dim names per flavour, the q8
 * files use the dynamic int8 MatMul pattern, and external data locations match the chunk counts that
 * config.json gives transformers.js.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureStandins, type StandinPaths } from '../../src/standins/ensure';
import { STANDIN_MODELS, type StandinModelKey } from '../../src/standins/families';
import { FLAVOURS, FLAVOUR_FILE, type Flavour } from '../../src/standins/flavours';
import { readManifest, type ModelManifest } from '../../src/standins/model-folder';
import type { ModelArch } from '../../src/presets';
import { CI_STANDINS, PYTHON, ciStandins, modelFile } from './helpers';

const HAS_ONNX = spawnSync(PYTHON, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
const CHECK = join(__dirname, 'onnx_check.py');
const MODELS = Object.keys(STANDIN_MODELS) as StandinModelKey[];
const IO_TYPE: Record<Flavour, string> = { fp32: 'FLOAT', fp16: 'FLOAT16', q8: 'FLOAT' };

interface Report {
  path: string;
  ir_version: number;
  opsets: Record<string, number>;
  inputs: [string, string, (string | number)[]][];
  outputs: [string, string, (string | number)[]][];
  op_types: string[];
  node_domains: string[];
  external_locations: string[];
}

function check(paths: string[]): Report[] {
  const r = spawnSync(PYTHON, [CHECK, ...paths], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`onnx_check.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Report[];
}

function expectedIO(a: ModelArch, f: Flavour) {
  const t = IO_TYPE[f];
  const inputs: Report['inputs'] = [
    ['input_ids', 'INT64', ['batch_size', 'sequence_length']],
    ['attention_mask', 'INT64', ['batch_size', 'total_sequence_length']],
    ['position_ids', 'INT64', ['batch_size', 'sequence_length']],
  ];
  const outputs: Report['outputs'] = [['logits', t, ['batch_size', 'sequence_length', a.vocabSize]]];
  for (let i = 0; i < a.numLayers; i++) {
    for (const kv of ['key', 'value']) {
      inputs.push([`past_key_values.${i}.${kv}`, t, ['batch_size', a.kvHeads, 'past_sequence_length', a.headDim]]);
      outputs.push([`present.${i}.${kv}`, t, ['batch_size', a.kvHeads, 'total_sequence_length', a.headDim]]);
    }
  }
  return { inputs, outputs };
}

describe.skipIf(
  !HAS_ONNX)(`stand-in ONNX files read by the onnx package${HAS_ONNX ? '' : ` (skipped: ${PYTHON} cannot import onnx)`}`, () => {
  let ci: StandinPaths;
  let ext: StandinPaths;
  const reports = new Map<string, Report>();
  beforeAll(async () => {
    ci = await ciStandins();
    ext = await ensureStandins({ ...CI_STANDINS, pairs: ['qwen3-0.6b+qwen2.5-0.5b'], fusers: false, externalDataThreshold: 0,
      chunkBytes: 4_000_000 });
    const files = [
      ...MODELS.flatMap((k) => FLAVOURS.map((f) => modelFile(ci.models[k]!, f))),
      ...(['qwen3-0.6b', 'qwen2.5-0.5b-instruct'] as const).flatMap((k) => FLAVOURS.map((f) => modelFile(ext.models[k]!, f))),
    ];
    for (const r of check(files)) reports.set(r.path, r);
  }, 300_000);

  for (const key of MODELS) {
    for (const f of FLAVOURS) {
      it(`${key} ${f}: full check, opset 17 standard ops, onnx-community I/O`, () => {
        const dir = ci.models[key]!;
        const r = reports.get(modelFile(dir, f))!;
        expect(r.ir_version).toBe(8);
        expect(r.opsets).toEqual({ '': 17 });
        expect(r.node_domains).toEqual(['']);
        const io = expectedIO(readManifest<ModelManifest>(dir)!.key.arch as ModelArch, f);
        expect(r.inputs).toEqual(io.inputs);
        expect(r.outputs).toEqual(io.outputs);
        expect(r.op_types.includes('MatMulInteger') && r.op_types.includes('DynamicQuantizeLinear')).toBe(f === 'q8');
        expect(r.external_locations).toEqual([]);
      });
    }
  }

  it('external data locations are exactly the chunks config.json counts', () => {
    for (const key of ['qwen3-0.6b', 'qwen2.5-0.5b-instruct'] as const) {
      const dir = ext.models[key]!;
      const counts = JSON.parse(readFileSync(join(dir, 'config.json'),
        'utf8'))['transformers.js_config'].use_external_data_format as Record<string, number>;
      expect(Object.keys(counts).sort()).toEqual(FLAVOURS.map((f) => FLAVOUR_FILE[f]).sort());
      for (const f of FLAVOURS) {
        const file = FLAVOUR_FILE[f];
        const want = Array.from({ length: counts[file] }, (_, i) => `${file}_data${i ? `_${i}` : ''}`);
        expect(reports.get(modelFile(dir, f))!.external_locations, `${key} ${file}`).toEqual(want);
      }
    }
  });
});
