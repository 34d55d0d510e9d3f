/**
 * The stand-in decoder as one ONNX graph (opset 17, standard ops only, so onnxruntime-node's CPU EP and
 * onnxruntime-web's wasm EP run it), with the onnx-community I/O that transformers.js expects:
 *   inputs  input_ids, position_ids [batch_size, sequence_length], attention_mask [batch_size,
 *           total_sequence_length] (int64); past_key_values.{i}.key|value [batch_size, kv_heads,
 *           past_sequence_length, head_dim]; optionally num_logits_to_keep (int64 scalar, 0 = all).
 *   outputs logits [batch_size, sequence_length, vocab]; present.{i}.key|value [batch_size, kv_heads,
 *           total_sequence_length, head_dim].
 * Semantics are HF's (modeling_qwen3 / qwen2 / llama, eager attention): pre-norm blocks with RMSNorm,
 * Qwen3's per-head q/k RMSNorm before RoPE, rotate-half RoPE from position_ids, GQA (query head h reads KV
 * head h // (heads / kv_heads)), causal + padding mask from attention_mask, softmax(q·kᵀ/√d + mask),
 * SwiGLU MLP, tied lm_head. The real exports fuse the same math into com.microsoft contrib ops
 * (GroupQueryAttention, RotaryEmbedding, SimplifiedLayerNormalization, MatMulNBits); these do not.
 */
import { DataType, type GraphSpec, type ValueInfoSpec } from '../fuser/onnx/protobuf';
import type { ModelArch } from '../presets';
import { decoderWeights, type DecoderWeight } from './decoder-weights';
import type { FamilyTraits, Llama3RopeScaling } from './families';
import { FLAVOUR_IO_TYPE, FlavourWeights, type Flavour } from './flavours';
import { GraphBuilder, type TensorSource } from './onnx-builder';
import { ropeInvFreq } from './rope';

export interface DecoderGraphSpec {
  arch: ModelArch;
  traits: FamilyTraits;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  rmsNormEps: number;
  flavour: Flavour;
  seed: number;
  /** Declare the `num_logits_to_keep` input (transformers.js sets it when a session has it). */
  numLogitsToKeep?: boolean;
}

export interface DecoderGraph {
  graph: GraphSpec;
  /** Weight tensors in the order the graph lists them (their bytes are produced when written). */
  weights: TensorSource[];
}

/** float32's most negative finite value: HF's `torch.finfo(float32).min` for masked scores. */
const MASKED = -3.4028234663852886e38;

export function buildDecoderGraph(s: DecoderGraphSpec): DecoderGraph {
  const { arch: a, traits } = s;
  if (a.numHeads % a.kvHeads !== 0) throw new RangeError(`num_heads ${a.numHeads} is not a multiple of kv_heads ${a.kvHeads}`);
  const b = new GraphBuilder();
  const fw = new FlavourWeights(b, s.flavour, s.seed);
  const byName = new Map(decoderWeights(a, traits).map((w) => [w.name, w]));
  const W = (name: string): DecoderWeight => {
    const w = byName.get(name);
    if (!w) throw new Error(`no weight ${name}`);
    return w;
  };
  const ioType = FLAVOUR_IO_TYPE[s.flavour];
  const kvName = (io: 'past_key_values' | 'present', i: number, kv: 'key' | 'value') => `${io}.${i}.${kv}`;

  // Lengths and the additive mask [B, 1, 1, S, T] (broadcast over kv heads and their query groups).
  const seqLen = b.op('Gather', [b.op('Shape', ['input_ids'], 'shape.ids'), b.i64([1], true)], 'S');
  const totalLen = b.op('Gather', [b.op('Shape', ['attention_mask'], 'shape.mask'), b.i64([1], true)], 'T');
  const pastLen = b.op('Sub', [totalLen, seqLen], 'P');
  const keyPos = b.op('Unsqueeze', [b.op('Range', [b.i64([0], true), totalLen, b.i64([1], true)], 'kpos'), b.i64([0])], 'kpos2');
  const queryPos = b.op('Unsqueeze', [b.op('Range', [pastLen, totalLen, b.i64([1], true)], 'qpos'), b.i64([1])], 'qpos2');
  const causal = b.op('LessOrEqual', [keyPos, queryPos], 'causal'); // [S, T]
  const notPad = b.op('Unsqueeze', [b.op('Cast', ['attention_mask'], 'mask.bool', { to: { i: DataType.BOOL } }), b.i64([1, 2])],
    'mask.b11t');
  const allowed = b.op('And', [notPad, causal], 'allowed'); // [B, 1, S, T]
  const bias = b.op('Unsqueeze', [b.op('Where', [allowed, b.f32(0), b.f32(MASKED)], 'mask.bias'), b.i64([1])], 'mask.bias5');

  // RoPE tables [B, 1, S, d] from position_ids.
  const invFreq = b.f32s('rope.inv_freq', ropeInvFreq(a.headDim, s.ropeTheta, s.ropeScaling));
  const pos = b.op('Unsqueeze', [b.op('Cast', ['position_ids'], 'pos.f32', { to: { i: DataType.FLOAT } }), b.i64([2])], 'pos3');
  const freqs = b.op('Mul', [pos, invFreq], 'freqs');
  const angles = b.op('Unsqueeze', [b.op('Concat', [freqs, freqs], 'angles', { axis: { i: -1 } }), b.i64([1])], 'angles4');
  const cos = b.op('Cos', [angles], 'cos');
  const sin = b.op('Sin', [angles], 'sin');
  const halfSplit = b.i64([a.headDim / 2, a.headDim / 2]);
  const rope = (x: string, hint: string): string => {
    const [x1, x2] = b.opN('Split', [x, halfSplit], `${hint}.split`, 2, { axis: { i: -1 } });
    const rotated = b.op('Concat', [b.op('Neg', [x2], `${hint}.neg`), x1], `${hint}.rot`, { axis: { i: -1 } });
    return b.op('Add', [b.op('Mul', [x, cos], `${hint}.xcos`), b.op('Mul', [rotated, sin], `${hint}.rsin`)], hint);
  };

  const eps = b.f32(s.rmsNormEps);
  const rmsNorm = (x: string, w: DecoderWeight, hint: string): string => {
    const ms = b.op('ReduceMean', [b.op('Mul', [x, x], `${hint}.sq`)], `${hint}.ms`, { axes: { ints: [-1] }, keepdims: { i: 1 } });
    const normed = b.op('Div', [x, b.op('Sqrt', [b.op('Add', [ms, eps], `${hint}.eps`)], `${hint}.rms`)], `${hint}.div`);
    return b.op('Mul', [normed, fw.vector(w)], hint);
  };

  const nRep = a.numHeads / a.kvHeads;
  const headsShape = (heads: number) => b.i64([0, 0, heads, a.headDim]);
  const toHeads = [0, 2, 1, 3];
  const scale = b.f32(1 / Math.sqrt(a.headDim));

  let x = fw.embed('input_ids', W('model.embed_tokens.weight'));
  for (let i = 0; i < a.numLayers; i++) {
    const p = `model.layers.${i}`;
    const L = `l${i}`;
    const h = rmsNorm(x, W(`${p}.input_layernorm.weight`), `${L}.ln1`);
    const proj = (which: 'q' | 'k' | 'v', heads: number): string => {
      const name = `${p}.self_attn.${which}_proj`;
      const y = fw.linear(h, W(`${name}.weight`), traits.qkvBias ? W(`${name}.bias`) : undefined, `${L}.${which}`);
      let t = b.op('Reshape', [y, headsShape(heads)], `${L}.${which}.heads`); // [B, S, heads, d]
      if (traits.qkNorm && which !== 'v') t = rmsNorm(t, W(`${p}.self_attn.${which}_norm.weight`), `${L}.${which}.norm`);
      return b.op('Transpose', [t], `${L}.${which}.bhsd`, { perm: { ints: toHeads } });
    };
    const q = rope(proj('q', a.numHeads), `${L}.q.rope`);
    const k = rope(proj('k', a.kvHeads), `${L}.k.rope`);
    const v = proj('v', a.kvHeads);
    const present = (kv: 'key' | 'value', t: string): string => {
      const stored = ioType === DataType.FLOAT ? t : b.op('Cast', [t], `${L}.${kv}.io`, { to: { i: ioType } });
      const out = b.op('Concat', [kvName('past_key_values', i, kv), stored], `${L}.${kv}.cat`, { axis: { i: 2 } },
        kvName('present', i, kv));
      return ioType === DataType.FLOAT ? out : b.op('Cast', [out], `${L}.${kv}.f32`, { to: { i: DataType.FLOAT } });
    };
    const kAll = b.op('Unsqueeze', [present('key', k), b.i64([2])], `${L}.k5`); // [B, kv, 1, T, d]
    const vAll = b.op('Unsqueeze', [present('value', v), b.i64([2])], `${L}.v5`);
    const q5 = b.op('Reshape', [q, b.i64([0, a.kvHeads, nRep, -1, a.headDim])], `${L}.q5`); // [B, kv, rep, S, d]
    const kT = b.op('Transpose', [kAll], `${L}.kT`, { perm: { ints: [0, 1, 2, 4, 3] } });
    const scores = b.op('Add', [b.op('Mul', [b.op('MatMul', [q5, kT], `${L}.qk`), scale], `${L}.scaled`), bias], `${L}.masked`);
    const probs = b.op('Softmax', [scores], `${L}.probs`, { axis: { i: -1 } });
    const ctx = b.op('Reshape', [b.op('MatMul', [probs, vAll], `${L}.pv`), b.i64([0, a.numHeads, -1, a.headDim])], `${L}.ctx`);
    const merged = b.op('Reshape', [b.op('Transpose', [ctx], `${L}.ctx.bshd`, { perm: { ints: toHeads } }),
      b.i64([0, 0, a.numHeads * a.headDim])], `${L}.ctx.flat`);
    x = b.op('Add', [x, fw.linear(merged, W(`${p}.self_attn.o_proj.weight`), undefined, `${L}.o`)], `${L}.res1`);

    const h2 = rmsNorm(x, W(`${p}.post_attention_layernorm.weight`), `${L}.ln2`);
    const gate = fw.linear(h2, W(`${p}.mlp.gate_proj.weight`), undefined, `${L}.gate`);
    const up = fw.linear(h2, W(`${p}.mlp.up_proj.weight`), undefined, `${L}.up`);
    const act = b.op('Mul', [b.op('Mul', [gate, b.op('Sigmoid', [gate], `${L}.sig`)], `${L}.silu`), up], `${L}.swiglu`);
    x = b.op('Add', [x, fw.linear(act, W(`${p}.mlp.down_proj.weight`), undefined, `${L}.down`)], `${L}.res2`);
  }
  let hidden = rmsNorm(x, W('model.norm.weight'), 'final.norm');
  if (s.numLogitsToKeep) hidden = keepLastLogits(b, hidden, seqLen);
  b.op('Identity', [fw.lmHead(hidden)], 'logits', undefined, 'logits');

  const kvDims = (len: string) => ['batch_size', a.kvHeads, len, a.headDim];
  const inputs: ValueInfoSpec[] = [
    { name: 'input_ids', dims: ['batch_size', 'sequence_length'], elemType: DataType.INT64 },
    { name: 'attention_mask', dims: ['batch_size', 'total_sequence_length'], elemType: DataType.INT64 },
    { name: 'position_ids', dims: ['batch_size', 'sequence_length'], elemType: DataType.INT64 },
  ];
  const outputs: ValueInfoSpec[] = [{ name: 'logits', dims: ['batch_size', s.numLogitsToKeep ? 'logits_length' : 'sequence_length',
    a.vocabSize], elemType: ioType }];
  for (let i = 0; i < a.numLayers; i++) {
    for (const kv of ['key', 'value'] as const) {
      inputs.push({ name: kvName('past_key_values', i, kv), dims: kvDims('past_sequence_length'), elemType: ioType });
      outputs.push({ name: kvName('present', i, kv), dims: kvDims('total_sequence_length'), elemType: ioType });
    }
  }
  if (s.numLogitsToKeep) inputs.push({ name: 'num_logits_to_keep', dims: [], elemType: DataType.INT64 });
  const graph: GraphSpec = { name: `${traits.modelType}_standin_${s.flavour}`, nodes: b.nodes, initializers: [...b.constants],
    inputs, outputs };
  return { graph, weights: b.weights };
}

/** hidden[:, -k:, :] for k = num_logits_to_keep > 0 (clamped to S), all of it for k = 0 (HF semantics). */
function keepLastLogits(b: GraphBuilder, hidden: string, seqLen: string): string {
  const k = 'num_logits_to_keep';
  const keep = b.op('Where', [b.op('Equal', [k, b.i64([0], true)], 'keep.all'), seqLen, b.op('Min', [k, seqLen], 'keep.min')], 'keep');
  const start = b.op('Unsqueeze', [b.op('Sub', [seqLen, keep], 'keep.start'), b.i64([0])], 'keep.start1');
  const end = b.op('Unsqueeze', [seqLen, b.i64([0])], 'keep.end1');
  return b.op('Slice', [hidden, start, end, b.i64([1])], 'keep.hidden');
}
