/**
 * The stand-in model folders load the way real onnx-community folders do: transformers.js (Node,
 * onnxruntime-node, device cpu) with AutoTokenizer + AutoModelForCausalLM for every family and flavour,
 * `present.*` / `logits` with the declared dims and dtypes, our CausalLM wrapper prefilling (fp32 and q8 here;
 * src/kv/convert.ts takes float16 KV too, and the wrapper's fp16 path is tested in test/engine/fp16.test.ts), the
 * real chat templates and special-token ids, external data (forced on with a zero threshold, split in chunks),
 * and the optional num_logits_to_keep input.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor } from '@huggingface/transformers';
import { beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '../../src/models/causal-lm';
import { ensureStandins, type StandinPaths } from '../../src/standins/ensure';
import { STANDIN_MODELS, type StandinModelKey } from '../../src/standins/families';
import { FLAVOURS, type Flavour } from '../../src/standins/flavours';
import { readManifest, type ModelManifest } from '../../src/standins/model-folder';
import type { ModelArch } from '../../src/presets';
import { maxAbsDiff } from '../util/allclose';
import { CI_STANDINS, ciStandins } from './helpers';

const MODELS = Object.keys(STANDIN_MODELS) as StandinModelKey[];
const DTYPE_KV: Record<Flavour, string> = { fp32: 'float32', fp16: 'float16', q8: 'float32' };

interface Tok {
  apply_chat_template(m: unknown[], o: Record<string, unknown>): unknown;
  encode(t: string, o?: Record<string, unknown>): number[];
  convert_tokens_to_ids(t: string): number;
  eos_token_id: number;
  pad_token_id: number | null;
}
interface Model {
  (inputs: Record<string, unknown>): Promise<Record<string, Tensor>>;
  sessions: { model: { inputNames: string[] } };
  dispose(): Promise<unknown>;
}

const useRoot = (root: string) => {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${root}/`;
};
const ids = (v: number[]) => new Tensor('int64', BigInt64Array.from(v, BigInt), [1, v.length]);
const ones = (n: number) => new Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
/** Tensor data as numbers for maxAbsDiff (NaN-poisoned; throws on a length mismatch). */
const nums = (d: unknown) => d as ArrayLike<number>;
const archOf = (dir: string) => readManifest<ModelManifest>(dir)!.key.arch as ModelArch;

async function forward(root: string, id: string, dtype: Flavour, tokens: number[], extra: Record<string, unknown> = {}) {
  useRoot(root);
  const model = (await AutoModelForCausalLM.from_pretrained(id, { dtype, device: 'cpu' } as never)) as unknown as Model;
  try {
    return { out: await model({ input_ids: ids(tokens), attention_mask: ones(tokens.length), ...extra }),
      inputNames: model.sessions.model.inputNames };
  } finally {
    await model.dispose();
  }
}

let ci: StandinPaths;
beforeAll(async () => {
  ci = await ciStandins();
}, 300_000);

describe('transformers.js loads every stand-in flavour', () => {
  for (const key of MODELS) {
    for (const f of FLAVOURS) {
      it(`${key} ${f}: AutoTokenizer + AutoModelForCausalLM, present/logits as declared`, async () => {
        const spec = STANDIN_MODELS[key];
        const arch = archOf(ci.models[key]!);
        useRoot(ci.root);
        const tok = (await AutoTokenizer.from_pretrained(spec.hubId)) as unknown as Tok;
        const tokens = tok.encode('The quick brown fox', { add_special_tokens: false });
        const { out } = await forward(ci.root, spec.hubId, f, tokens);
        expect(out.logits.dims).toEqual([1, tokens.length, arch.vocabSize]);
        expect(out.logits.type).toBe(DTYPE_KV[f]);
        for (let i = 0; i < arch.numLayers; i++) {
          for (const kv of ['key', 'value']) {
            const t = out[`present.${i}.${kv}`];
            expect(t.dims).toEqual([1, arch.kvHeads, tokens.length, arch.headDim]);
            expect(t.type).toBe(DTYPE_KV[f]);
          }
        }
        expect(Object.keys(out).filter((k) => k.startsWith('present.'))).toHaveLength(2 * arch.numLayers);
      });
    }
  }
});

describe('CausalLM wrapper (fp32, q8)', () => {
  for (const key of MODELS) {
    for (const f of ['fp32', 'q8'] as const) {
      it(`${key} ${f}: chat prompt → prefill KV with the real KV widths`, async () => {
        useRoot(ci.root);
        const lm = await CausalLM.load({ id: STANDIN_MODELS[key].hubId }, { device: 'cpu', dtype: f });
        try {
          const real = STANDIN_MODELS[key].arch;
          expect([lm.info.numLayers, lm.info.kvHeads, lm.info.headDim, lm.info.vocabSize]).toEqual(
            [CI_STANDINS.layers, real.kvHeads, real.headDim, real.vocabSize]);
          expect(lm.info.maxPositions).toBe(real.maxContext);
          const prompt = lm.encodeChat([{ role: 'user', content: 'What is the capital of France?' }]);
          const kv = await lm.prefillKV(prompt.slice(0, -1));
          expect(kv).toHaveLength(CI_STANDINS.layers!);
          for (const layer of kv) {
            for (const t of [layer.key, layer.value]) {
              expect([t.heads, t.seq, t.headDim]).toEqual([real.kvHeads, prompt.length - 1, real.headDim]);
              expect(t.data.every(Number.isFinite)).toBe(true);
            }
          }
          const { logits } = await lm.forward(prompt.slice(-1), [prompt.length - 1], lm.pastFromKV(kv));
          expect(logits).toHaveLength(real.vocabSize);
        } finally {
          await lm.dispose();
        }
      });
    }
  }
});

describe('tokenizers and chat templates', () => {
  const render = async (key: StandinModelKey) => {
    useRoot(ci.root);
    const tok = (await AutoTokenizer.from_pretrained(STANDIN_MODELS[key].hubId)) as unknown as Tok;
    const text = tok.apply_chat_template([{ role: 'user', content: 'Hi' }],
      { tokenize: false, add_generation_prompt: true, enable_thinking: false });
    return { tok, text: String(text) };
  };

  it('Qwen3: thinking disabled renders the empty think block; <think> is one added token', async () => {
    const { tok, text } = await render('qwen3-0.6b');
    expect(text).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
    expect(['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<think>', '</think>'].map((t) => tok.convert_tokens_to_ids(t))).toEqual(
      [151643, 151644, 151645, 151667, 151668]);
    expect(tok.encode('<think>', { add_special_tokens: false })).toEqual([151667]);
    expect([tok.eos_token_id, tok.pad_token_id]).toEqual([151645, 151643]);
  });

  it("Qwen2.5-Instruct: default system prompt, no think block; Qwen3's extra tokens are plain text", async () => {
    const { tok, text } = await render('qwen2.5-0.5b-instruct');
    expect(text).toBe('<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|file_sep|>'].map((t) => tok.convert_tokens_to_ids(t))).toEqual(
      [151643, 151644, 151645, 151664]);
    for (const t of ['<think>', '</think>', '<tool_response>']) {
      const enc = tok.encode(t, { add_special_tokens: false });
      expect(enc.length, t).toBeGreaterThan(1);
      expect(Math.max(...enc), t).toBeLessThan(151643);
    }
    expect([tok.eos_token_id, tok.pad_token_id]).toEqual([151645, 151643]);
  });

  it('Llama 3: plain Llama 3 template with bos, eot as eos, no pad token of its own', async () => {
    const { tok, text } = await render('llama3.2-1b-instruct');
    expect(text).toBe('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
    expect(['<|begin_of_text|>', '<|eot_id|>'].map((t) => tok.convert_tokens_to_ids(t))).toEqual([128000, 128009]);
    expect(tok.eos_token_id).toBe(128009);
  });
});

describe('external data and num_logits_to_keep', () => {
  const tokens = [791, 6233, 374, 13, 40, 1093];
  const qwenPair = ['qwen3-0.6b+qwen2.5-0.5b'] as const;

  it('threshold 0 with 4 MB chunks: every flavour in model.onnx_data[_n], counted in config.json, same outputs as inline', async () => {
    const ext = await ensureStandins({ ...CI_STANDINS, pairs: [...qwenPair], fusers: false, externalDataThreshold: 0,
      chunkBytes: 4_000_000 });
    const dir = ext.models['qwen2.5-0.5b-instruct']!;
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const counts = cfg['transformers.js_config'].use_external_data_format as Record<string, number>;
    const manifest = readManifest<ModelManifest>(dir)!;
    for (const f of FLAVOURS) {
      const rec = manifest.flavours[f]!;
      expect(rec.externalDataFiles).toBeGreaterThan(1);
      expect(rec.files.map((x) => x.name)).toContain(`${rec.files[0].name}_data_1`);
      expect(counts[rec.files[0].name]).toBe(rec.externalDataFiles);
      expect(rec.files[0].bytes).toBeLessThan(200_000);
      const a = (await forward(ext.root, STANDIN_MODELS['qwen2.5-0.5b-instruct'].hubId, f, tokens)).out;
      const b = (await forward(ci.root, STANDIN_MODELS['qwen2.5-0.5b-instruct'].hubId, f, tokens)).out;
      expect(maxAbsDiff(nums(a.logits.data), nums(b.logits.data)), `${f} logits`).toBe(0);
      const present = (o: typeof a) => nums(o['present.1.value'].data);
      expect(maxAbsDiff(present(a), present(b)), `${f} present.1.value`).toBe(0);
    }
  });

  it('num_logits_to_keep: declared input; 1 keeps the last row, 0 (transformers.js default in forward) keeps all', async () => {
    const keep = await ensureStandins({ ...CI_STANDINS, pairs: [...qwenPair], fusers: false, flavours: ['fp32', 'q8'],
      numLogitsToKeep: true });
    const id = STANDIN_MODELS['qwen3-0.6b'].hubId;
    const vocab = STANDIN_MODELS['qwen3-0.6b'].arch.vocabSize;
    for (const f of ['fp32', 'q8'] as const) {
      const plain = (await forward(ci.root, id, f, tokens)).out.logits;
      const all = await forward(keep.root, id, f, tokens);
      expect(all.inputNames).toContain('num_logits_to_keep');
      expect(all.out.logits.dims).toEqual([1, tokens.length, vocab]);
      const last = (await forward(keep.root, id, f, tokens, { num_logits_to_keep: new Tensor('int64', [1n], []) })).out.logits;
      expect(last.dims).toEqual([1, 1, vocab]);
      // q8 quantizes activations per tensor: over the kept rows only, the last row's scale can differ.
      const tail = (plain.data as Float32Array).subarray(-vocab);
      expect(maxAbsDiff(nums(last.data), tail)).toBeLessThan(f === 'fp32' ? 1e-5 : 2e-2);
      expect(maxAbsDiff(nums(all.out.logits.data), nums(plain.data))).toBe(0);
    }
  });
});
