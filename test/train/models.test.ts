/**
 * Checks the shipped tiny pair in models/c2c-tiny against the golden fixtures written by train/golden.py:
 * manifest hashes; transformers.js (Node, cpu, fp32) reproduces the PyTorch prompt ids and greedy outputs of
 * the receiver, sharer and text-relay modes; ONNX `present.*` equal the PyTorch KV slices; and the full C2C
 * flow (ONNX prefills over prompt[:-1], CPU reference fuser, receiver decode on the fused cache) reproduces
 * the golden C2C tokens and fused-KV slices.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { env, AutoTokenizer, AutoModelForCausalLM, Tensor, DynamicCache } from '@huggingface/transformers';
import { parseSafetensors, tensorToFloat32 } from '../../src/fuser/safetensors';
import { loadFuserFromDirectory } from '../../src/fuser/format/node-io';
import { fuseCache } from '../../src/fuser/reference';
import type { KVCache } from '../../src/types';
import { expectAllClose } from '../util/allclose';

const models = process.env.C2C_TEST_MODELS_DIR ?? path.resolve(import.meta.dirname, '..', '..', 'models');
const pairDir = path.join(models, 'c2c-tiny');
const golden = JSON.parse(readFileSync(path.join(pairDir, 'golden', 'golden.json'), 'utf8'));
const kv = parseSafetensors(new Uint8Array(readFileSync(path.join(pairDir, 'golden', golden.kv_file))));
const f32 = (name: string) => {
  const t = kv.tensors.get(name);
  if (!t) throw new Error(`golden tensor ${name} missing`);
  return tensorToFloat32(t);
};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

describe('models/ manifest', () => {
  it('lists every shipped file with its sha256 and size', () => {
    const man = JSON.parse(readFileSync(path.join(models, 'manifest.json'), 'utf8'));
    const files = walk(models).map((p) => path.relative(models, p)).filter((p) => p !== 'manifest.json').sort();
    expect(Object.keys(man.files).sort()).toEqual(files);
    for (const f of files) {
      const bytes = readFileSync(path.join(models, f));
      expect(man.files[f].sha256, f).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(man.files[f].bytes, f).toBe(bytes.length);
    }
  });
});

type Model = Awaited<ReturnType<typeof AutoModelForCausalLM.from_pretrained>>;
type Tok = Awaited<ReturnType<typeof AutoTokenizer.from_pretrained>>;

describe('models/c2c-tiny in transformers.js', () => {
  let tok: Tok, receiver: Model, sharer: Model;
  beforeAll(async () => {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = models + '/';
    tok = await AutoTokenizer.from_pretrained('c2c-tiny/receiver');
    receiver = await AutoModelForCausalLM.from_pretrained('c2c-tiny/receiver', { device: 'cpu', dtype: 'fp32' });
    sharer = await AutoModelForCausalLM.from_pretrained('c2c-tiny/sharer', { device: 'cpu', dtype: 'fp32' });
  });

  const chatIds = (user: string) =>
    Array.from(tok.encode(tok.apply_chat_template([{ role: 'user', content: user }],
      { add_generation_prompt: true, tokenize: false }) as string,
      { add_special_tokens: false })).map(Number);
  const generate = async (model: Model, ids: number[], maxNew: number) => {
    const input_ids = new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
    const attention_mask = new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]);
    const out = (await model.generate({ input_ids, attention_mask, max_new_tokens: maxNew, do_sample: false })) as Tensor;
    return (out.tolist()[0] as bigint[]).map(Number).slice(ids.length);
  };
  /** Forward over ids at positions 0..n-1, returning the cache as [heads, seq, dim] Float32Arrays. */
  const prefill = async (model: Model, ids: number[]): Promise<KVCache> => {
    const n = ids.length;
    const out = await model({
      input_ids: new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, n]),
      attention_mask: new Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
      position_ids: new Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, n]),
    });
    const cache: KVCache = [];
    for (let l = 0; out[`present.${l}.key`]; l++) {
      const k = out[`present.${l}.key`] as Tensor, v = out[`present.${l}.value`] as Tensor;
      const [, h, s, d] = k.dims;
      cache.push({ key: { data: new Float32Array(k.data as Float32Array), heads: h, seq: s, headDim: d },
        value: { data: new Float32Array(v.data as Float32Array), heads: h, seq: s, headDim: d } });
    }
    return cache;
  };
  const slice = (t: { data: ArrayLike<number> & { subarray(a: number,
    b: number): ArrayLike<number> }; heads: number; seq: number; headDim: number }, n: number) => {
    const o = new Float32Array(t.heads * n * t.headDim);
    for (let h = 0; h < t.heads; h++) o.set(t.data.subarray(h * t.seq * t.headDim, (h * t.seq + n) * t.headDim), h * n * t.headDim);
    return o;
  };

  it('tokenizes prompts and reproduces receiver, sharer and text-relay greedy outputs', async () => {
    for (const c of golden.cases) {
      expect(chatIds(c.user), c.id).toEqual(c.prompt_ids);
      expect(await generate(receiver, c.prompt_ids, golden.max_new_tokens), `${c.id} receiver`).toEqual(c.receiver.output_ids);
      expect(await generate(sharer, c.prompt_ids, golden.max_new_tokens), `${c.id} sharer`).toEqual(c.sharer.output_ids);
      const tr = c.text_relay;
      expect(await generate(sharer, tr.hint_prompt_ids, golden.hint_max_tokens), `${c.id} hint`).toEqual(tr.hint_ids);
      expect(chatIds(tr.relay_user), `${c.id} relay prompt`).toEqual(tr.relay_prompt_ids);
      expect(await generate(receiver, tr.relay_prompt_ids, golden.max_new_tokens), `${c.id} relay`).toEqual(tr.output_ids);
    }
  });

  it('C2C: ONNX prefills + reference fuser + receiver decode reproduce the golden tokens and fused KV', async () => {
    const weights = await loadFuserFromDirectory(path.join(pairDir, 'fuser'));
    expect(weights.config.layerMap).toEqual(golden.layer_map);
    for (const [ci, c] of golden.cases.entries()) {
      const head = c.prompt_ids.slice(0, -1);
      const r = await prefill(receiver, head);
      const s = await prefill(sharer, head);
      const n = c.kv_tokens;
      for (let l = 0; l < r.length; l++) {
        expectAllClose(slice(r[l].key, n), f32(`c${ci}.receiver.${l}.key`), { atol: 1e-4, what: `c${ci} receiver K${l}` });
        expectAllClose(slice(r[l].value, n), f32(`c${ci}.receiver.${l}.value`), { atol: 1e-4, what: `c${ci} receiver V${l}` });
      }
      const fused = fuseCache(weights, r, s);
      for (let l = 0; l < fused.length; l++) {
        expectAllClose(slice(fused[l].key, n), f32(`c${ci}.fused.${l}.key`), { atol: 2e-4, what: `c${ci} fused K${l}` });
        expectAllClose(slice(fused[l].value, n), f32(`c${ci}.fused.${l}.value`), { atol: 2e-4, what: `c${ci} fused V${l}` });
      }
      const past: Record<string, Tensor> = {};
      fused.forEach((lkv, l) => {
        past[`past_key_values.${l}.key`] = new Tensor('float32', lkv.key.data, [1, lkv.key.heads, lkv.key.seq, lkv.key.headDim]);
        past[`past_key_values.${l}.value`] = new Tensor('float32', lkv.value.data, [1, lkv.value.heads, lkv.value.seq, lkv.value.headDim]);
      });
      const ids = c.prompt_ids as number[];
      const out = (await receiver.generate({
        input_ids: new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
        attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
        past_key_values: new DynamicCache(past), max_new_tokens: golden.max_new_tokens, do_sample: false,
      })) as Tensor;
      expect((out.tolist()[0] as bigint[]).map(Number).slice(ids.length), `${c.id} c2c`).toEqual(c.c2c.output_ids);
    }
  });
});
