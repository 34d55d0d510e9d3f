/**
 * Float16-KV test pair, generated on demand (never committed) into test-results/pairs/: a copy of the shipped
 * fp32 pair (models/c2c-tiny, PyTorch-trained, golden fixtures) whose receiver and sharer folders also hold
 * `onnx/model_fp16.onnx`: the same fp32 graph wrapped like the onnx-community fp16 / q4f16 exports look from
 * outside, i.e. float16 `past_key_values.*` inputs (Cast to f32 inside), float16 `present.*` and `logits`
 * outputs (Cast from f32), plus a `num_logits_to_keep` int64 input (the last k positions reach the LM head; 0 = all).
 * Each config.json gets `transformers.js_config.dtype: 'fp16'`, so an engine without `ModelSource.dtype` picks
 * the f16 file the way transformers.js users get it. The fp32 `onnx/model.onnx` stays, selectable with dtype 'fp32'.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO, type TestPair } from '../engine/pair';
import { encodeMessage, int, msg, packed, parseMessage, str, sub, text, type WireField } from './onnx-wire';

/** ONNX TensorProto.DataType. */
const FLOAT = 1, INT64 = 7, FLOAT16 = 10;
const GENERATOR_VERSION = 3;

// Field numbers (onnx.proto3): ModelProto.graph 7; GraphProto node 1, initializer 5, input 11, output 12;
// NodeProto input 1, output 2, name 3, op_type 4, attribute 5; ValueInfoProto name 1, type 2; TypeProto.tensor_type 1;
// TypeProto.Tensor elem_type 1, shape 2; AttributeProto name 1, i 3, type 20; TensorProto dims 1, data_type 2, name 8, raw_data 9.

function setElemType(valueInfo: WireField[], elemType: number): WireField[] {
  return valueInfo.map((f) => {
    if (f.field !== 2) return f;
    const type = sub(f).map((t) => (t.field === 1 ? msg(1, sub(t).map((e) => (e.field === 1 ? int(1, elemType) : e))) : t));
    return msg(2, type);
  });
}

const node = (op: string, inputs: string[], outputs: string[], name: string, attrs: WireField[] = []): WireField =>
  msg(1, [...inputs.map((i) => str(1, i)), ...outputs.map((o) => str(2, o)), str(3, name), str(4, op), ...attrs]);
/** Cast's `to` attribute (AttributeProto type 2 = INT). */
const castTo = (to: number): WireField => msg(5, [str(1, 'to'), int(3, to), int(20, 2)]);
/** A 1-D int64 initializer (raw little-endian data). */
function int64Init(name: string, values: bigint[]): WireField {
  const raw = new Uint8Array(values.length * 8);
  values.forEach((v, i) => new DataView(raw.buffer).setBigInt64(i * 8, v, true));
  return msg(5, [packed(1, [values.length]), int(2, INT64), str(8, name), { field: 9, wire: 2, value: raw }]);
}

/**
 * The fp32 decoder graph with float16 KV and logits at its boundary and a `num_logits_to_keep` input.
 * Internal consumers keep reading the f32 values (renamed `<name>.f32`).
 */
export function wrapDecoderFp16(model: Uint8Array): Uint8Array {
  const top = parseMessage(model);
  const gi = top.findIndex((f) => f.field === 7);
  if (gi < 0) throw new Error('not an ONNX ModelProto (no graph)');
  const graph = sub(top[gi]);
  const nameOf = (vi: WireField) => text(sub(vi).find((f) => f.field === 1)!);
  const inputs = graph.filter((f) => f.field === 11);
  const outputs = graph.filter((f) => f.field === 12);
  const f16In = inputs.map(nameOf).filter((n) => n.startsWith('past_key_values.'));
  const f16Out = outputs.map(nameOf).filter((n) => n.startsWith('present.') || n === 'logits');
  if (!f16In.length || !f16Out.includes('logits')) throw new Error('expected past_key_values.* inputs and a logits output');
  const renamed = new Map<string, string>([...f16In, ...f16Out].map((n) => [n, `${n}.f32`]));
  let lmHeadInput = '';
  let lmHead = -1;
  const nodes: WireField[] = [];
  for (const f of graph) {
    if (f.field !== 1) continue;
    const fields = sub(f);
    const outs = fields.filter((x) => x.field === 2).map(text);
    const isLmHead = outs.includes('logits');
    if (isLmHead) lmHead = nodes.length;
    let inputIdx = 0;
    const edited = fields.map((x) => {
      if (x.field !== 1 && x.field !== 2) return x;
      const n = text(x);
      if (x.field === 1 && isLmHead && inputIdx++ === 0) {
        lmHeadInput = n;
        return str(1, 'lm_head.kept');
      }
      return renamed.has(n) ? str(x.field, renamed.get(n)!) : x;
    });
    nodes.push(msg(1, edited));
  }
  if (!lmHeadInput) throw new Error('no node produces logits');
  // Topological order: input casts first, the LM-head slice right before the LM head, output casts last.
  const head = [
    ...f16In.map((n) => node('Cast', [n], [renamed.get(n)!], `cast_in.${n}`, [castTo(FLOAT)])),
    node('Neg', ['num_logits_to_keep'], ['nltk.neg'], 'nltk.neg'),
    node('Reshape', ['nltk.neg', 'nltk.shape1'], ['nltk.start'], 'nltk.start'),
  ];
  // hidden[:, -k:, :] with k = num_logits_to_keep (k = 0 → start 0 → every position).
  const slice = node('Slice', [lmHeadInput, 'nltk.start', 'nltk.end', 'nltk.axes'], ['lm_head.kept'], 'nltk.slice');
  const tail = f16Out.map((n) => node('Cast', [renamed.get(n)!], [n], `cast_out.${n}`, [castTo(FLOAT16)]));
  const inits = [int64Init('nltk.shape1', [1n]), int64Init('nltk.end', [9223372036854775807n]), int64Init('nltk.axes', [1n])];
  const nltkInput = msg(11, [str(1, 'num_logits_to_keep'), msg(2, [msg(1, [int(1, INT64), msg(2, [])])])]);
  const rest = graph.filter((f) => f.field !== 1 && f.field !== 11 && f.field !== 12);
  const newGraph = [
    ...head,
    ...nodes.slice(0, lmHead),
    slice,
    ...nodes.slice(lmHead),
    ...tail,
    ...rest,
    ...inits,
    ...inputs.map((f) => (f16In.includes(nameOf(f)) ? msg(11, setElemType(sub(f), FLOAT16)) : f)),
    nltkInput,
    ...outputs.map((f) => (f16Out.includes(nameOf(f)) ? msg(12, setElemType(sub(f), FLOAT16)) : f)),
  ];
  top[gi] = msg(7, newGraph);
  return encodeMessage(top);
}

const ROLE_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'];

/**
 * The generated pair folder (created or refreshed when the source models changed): receiver/ and sharer/ with
 * both onnx files, fuser/ and golden/ copied. Returns a TestPair pointing at it.
 */
export function ensureFp16Pair(src: TestPair): TestPair {
  const out = path.join(REPO, 'test-results', 'pairs', `${path.basename(src.dir)}-fp16`);
  const stampFile = path.join(out, 'stamp.json');
  const models = ['receiver', 'sharer'].map((r) => path.join(src.dir, r, 'onnx', 'model.onnx'));
  const stamp = JSON.stringify({ v: GENERATOR_VERSION, src: src.dir, models: models.map((m) => [statSync(m).size, statSync(m).mtimeMs]) });
  if (!(existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp)) {
    rmSync(out, { recursive: true, force: true });
    for (const role of ['receiver', 'sharer']) {
      const dir = path.join(out, role);
      mkdirSync(path.join(dir, 'onnx'), { recursive: true });
      for (const f of ROLE_FILES) if (existsSync(path.join(src.dir, role, f))) copyFileSync(path.join(src.dir, role, f), path.join(dir, f));
      const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      cfg['transformers.js_config'] = { dtype: 'fp16' };
      writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
      const fp32 = readFileSync(path.join(src.dir, role, 'onnx', 'model.onnx'));
      copyFileSync(path.join(src.dir, role, 'onnx', 'model.onnx'), path.join(dir, 'onnx', 'model.onnx'));
      writeFileSync(path.join(dir, 'onnx', 'model_fp16.onnx'), wrapDecoderFp16(new Uint8Array(fp32)));
    }
    for (const d of ['fuser', 'golden']) cpSync(path.join(src.dir, d), path.join(out, d), { recursive: true });
    writeFileSync(stampFile, stamp);
  }
  return { dir: out, rel: path.relative(REPO, out), golden: src.golden };
}
