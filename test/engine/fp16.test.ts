/**
 * float16 KV end to end in Node, on the generated fp16 pair (test/helpers/fp16-pair.ts: the shipped PyTorch-trained
 * pair with float16 past/present/logits at the ONNX boundary, `transformers.js_config.dtype: 'fp16'`):
 * dtype choice and report, Uint16 KV of half the bytes through prefill and transfer, f16 prefill KV equal to the
 * fp32 model's KV rounded once, fused-cache parity (reference and ONNX fusers) against the f32 pipeline within a
 * tolerance derived from f16 rounding, f16 logits, and every engine mode against the PyTorch golden tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { createNodeC2CEngine, nodePlatform } from '../../src/node';
import { CausalLM } from '../../src/models/causal-lm';
import { ModelHost } from '../../src/hosts/model-host';
import { loadFuserFromDirectory } from '../../src/fuser/format/node-io';
import { fuseCache } from '../../src/fuser/reference';
import { createOnnxFuser, type OrtModuleLike } from '../../src/fuser/onnx';
import { kvCacheByteLength, kvTransferables } from '../../src/kv/convert';
import { widenData } from '../../src/kv/ops';
import type { C2CEngine, FuserWeights, KVCache } from '../../src/types';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB, pairOptions, type TestPair } from './pair';
import { ensureFp16Pair } from '../helpers/fp16-pair';
import { toF16Cache, toF32Cache } from '../helpers/kv-dtype';

/** Half the spacing of f16 values around v (the most one round-to-nearest moves v). */
const halfUlp = (v: number) => 2 ** (Math.max(Math.floor(Math.log2(Math.abs(v) || 2 ** -14)), -14) - 11);

function maxDiff(a: KVCache, b: KVCache): number {
  let m = 0;
  a.forEach((l, i) => {
    for (const p of ['key', 'value'] as const) {
      const x = widenData(l[p]), y = widenData(b[i][p]);
      for (let k = 0; k < x.length; k++) m = Math.max(m, Math.abs(x[k] - y[k]));
    }
  });
  return m;
}

/** Largest |a − b| − allowed(b) over elements (≤ 0: every element within its own bound). */
function worstExcess(a: KVCache, b: KVCache, allowed: (v: number) => number): number {
  let m = -Infinity;
  a.forEach((l, i) => {
    for (const p of ['key', 'value'] as const) {
      const x = widenData(l[p]), y = widenData(b[i][p]);
      for (let k = 0; k < x.length; k++) m = Math.max(m, Number.isNaN(x[k]) ? Infinity : Math.abs(x[k] - y[k]) - allowed(y[k]));
    }
  });
  return m;
}

/**
 * Greedy decode of `prompt` on the f16 and the f32 model side by side, teacher-forced with `golden`: the first
 * step where the f16 model picks another token, with the f32 model's margin for the golden token there and the
 * largest f16-vs-f32 logit difference at that step (a flip from rounding needs margin ≤ 2 × that difference).
 */
async function firstFlip(m16: CausalLM, m32: CausalLM, prompt: number[], golden: number[]) {
  const head = prompt.slice(0, -1);
  let p16 = m16.pastFromKV(await m16.prefillKV(head));
  let p32 = m32.pastFromKV(await m32.prefillKV(head));
  let ids = [prompt.at(-1)!];
  let maxDev = 0;
  for (let d = 0; d < golden.length; d++) {
    const pos = [head.length + d];
    const a = await m16.forward(ids, pos, p16);
    const b = await m32.forward(ids, pos, p32);
    let dev = 0;
    for (let i = 0; i < a.logits.length; i++) dev = Math.max(dev, Math.abs(a.logits[i] - b.logits[i]));
    maxDev = Math.max(maxDev, dev);
    const argmax = (x: Float32Array) => x.reduce((bi, v, i) => (v > x[bi] ? i : bi), 0);
    const tok16 = argmax(a.logits);
    if (tok16 !== golden[d]) return { step: d, margin32: b.logits[golden[d]] - b.logits[tok16], dev, maxDev };
    p16 = m16.pastFromPresent(a.present);
    p32 = m32.pastFromPresent(b.present);
    ids = [golden[d]];
  }
  return { step: -1, margin32: Infinity, dev: 0, maxDev };
}

/** f16 KV moves this pair's logits by at most ~6e-3 over a decode (measured); a wrong read of KV or logits moves them by whole units. */
const MAX_LOGIT_DEV = 0.05;

const bitEqualCache = (a: KVCache, b: KVCache) => a.every((l, i) => (['key', 'value'] as const).every(
  (p) => l[p].dtype === b[i][p].dtype && Buffer.from(l[p].data.buffer, l[p].data.byteOffset, l[p].data.byteLength).equals(
  Buffer.from(b[i][p].data.buffer, b[i][p].data.byteOffset, b[i][p].data.byteLength))));

describe.skipIf(!PAIR)(`float16 KV end to end in Node${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  let pair: TestPair;
  const g = PAIR_OR_STUB.golden;
  const lm: Record<'r16' | 's16' | 'r32' | 's32', CausalLM> = {} as never;
  let weights: FuserWeights;

  beforeAll(async () => {
    pair = ensureFp16Pair(PAIR!);
    const load = async (role: 'receiver' | 'sharer', dtype?: string) => {
      const src = { id: role, localPath: pair.dir, dtype };
      nodePlatform().configureEnv(src, { device: 'cpu', allowRemoteModels: false, shareDevice: false, topology: 'node' });
      return CausalLM.load(src, { device: 'cpu' });
    };
    // Sequential: transformers.js env is global and configureEnv sets the folder.
    lm.r16 = await load('receiver');
    lm.s16 = await load('sharer');
    lm.r32 = await load('receiver', 'fp32');
    lm.s32 = await load('sharer', 'fp32');
    weights = await loadFuserFromDirectory(path.join(pair.dir, 'fuser'));
  });
  afterAll(async () => {
    for (const m of Object.values(lm)) await m?.dispose();
  });

  it("the model's own config default picks the fp16 file (float16 KV); dtype 'fp32' picks model.onnx", () => {
    expect([lm.r16.modelDType, lm.r16.kvDType, lm.s16.kvDType]).toEqual(['fp16', 'float16', 'float16']);
    expect([lm.r32.modelDType, lm.r32.kvDType]).toEqual(['fp32', 'float32']);
    // The fp16 file declares num_logits_to_keep (the LM head then runs on the last position only); model.onnx does not.
    expect([lm.r16.keepsLogits, lm.r32.keepsLogits]).toEqual([true, false]);
  });

  it('f16 prefill KV is Uint16 bits, half the bytes, and equals the fp32 model\'s KV rounded once (nearest-even)', async () => {
    for (const c of g.cases.slice(0, 3)) {
      const ids = c.prompt_ids.slice(0, -1);
      const k16 = await lm.r16.prefillKV(ids);
      const k32 = await lm.r32.prefillKV(ids);
      expect(k16[0].key.data).toBeInstanceOf(Uint16Array);
      expect(k16.every((l) => l.key.dtype === 'float16' && l.value.dtype === 'float16')).toBe(true);
      expect(kvCacheByteLength(k16) * 2).toBe(kvCacheByteLength(k32));
      // The wrapper casts the f32 present.* at the boundary: ORT's Cast and our rounding must agree bit for bit.
      expect(bitEqualCache(k16, toF16Cache(k32))).toBe(true);
    }
  });

  it('a transferred f16 cache moves its Uint16 buffers (2 bytes per value), detaching the sender', async () => {
    const kv = await lm.s16.prefillKV(g.cases[0].prompt_ids.slice(0, -1));
    const bytes = kvCacheByteLength(kv);
    const bufs = kvTransferables(kv);
    expect(bufs.reduce((n, b) => n + b.byteLength, 0)).toBe(bytes);
    const moved = structuredClone(kv, { transfer: bufs });
    expect(moved[0].key.data).toBeInstanceOf(Uint16Array);
    expect(kvCacheByteLength(moved)).toBe(bytes);
    expect(kv[0].key.data.byteLength).toBe(0);
  });

  it('a cache of the wrong dtype is refused by the model (never silently converted)', async () => {
    const kv = await lm.r32.prefillKV([1, 2, 3]);
    expect(() => lm.r16.pastFromKV(kv)).toThrow(/float32 but the model takes float16/);
  });

  // Tolerance, derived from f16 rounding: the f16 pipeline fuses the rounded inputs r̃ = r + δr, s̃ = s + δs
  // (|δ| ≤ ½ ulp each) and rounds the result once (≤ ½ ulp). fused = r + w·p(r, s): δr passes through the
  // residual unchanged, and the projector term moves by at most its sensitivity to δ. So per element
  // |fused16 − fused32| ≤ ½ulp(fused) + ½ulp(r) + |Δ(w·p)|, and |Δ(w·p)| is measured here with the reference in
  // f32 on r̃, s̃ (no output rounding): the backends must then add at most the one output rounding.
  for (const backend of ['reference', 'onnx'] as const)
    it(`${backend} fuser: f16 KV in → f16 KV out within ½ ulp of the f32 math on the same inputs; vs the f32 pipeline within the derived bound`, async () => {
      const onnx = backend === 'onnx' ? await createOnnxFuser(weights,
        { ort: (await import('onnxruntime-node')) as unknown as OrtModuleLike }) : null;
      const fuse = (r: KVCache, s: KVCache) => (onnx ? onnx.fuse(r, s) : Promise.resolve(fuseCache(weights, r, s)));
      let worst16 = -Infinity, worstPipe = -Infinity, dev = 0, projTerm = 0;
      try {
        for (const c of g.cases) {
          const ids = c.prompt_ids.slice(0, -1);
          const [r16, s16, r32, s32] = await Promise.all([lm.r16.prefillKV(ids), lm.s16.prefillKV(ids), lm.r32.prefillKV(ids),
            lm.s32.prefillKV(ids)]);
          const f16 = await fuse(r16, s16);
          expect(f16.every((l) => l.key.dtype === 'float16' && l.value.dtype === 'float16')).toBe(true);
          const onRounded = fuseCache(weights, toF32Cache(r16), toF32Cache(s16)); // f32 math on r̃, s̃
          const f32 = fuseCache(weights, r32, s32);
          worst16 = Math.max(worst16, worstExcess(f16, onRounded, (v) => halfUlp(v) + 1e-5));
          const term = maxDiff(onRounded, f32); // ½ulp(r) + |Δ(w·p)| as it happens
          projTerm = Math.max(projTerm, term);
          worstPipe = Math.max(worstPipe, worstExcess(f16, f32, (v) => halfUlp(v) + term));
          dev = Math.max(dev, maxDiff(f16, f32));
        }
      } finally {
        onnx?.dispose();
      }
      console.log(`[fp16 fuse ${backend}] max |f16 − f32 pipeline| ${dev.toExponential(2)} (input-rounding term ${projTerm.toExponential(2)}); excess over ½ulp on rounded inputs ${worst16.toExponential(2)}`);
      expect(worst16).toBeLessThanOrEqual(0);
      expect(worstPipe).toBeLessThanOrEqual(0);
      expect(dev, 'the comparison sees the f16 rounding (not an f32 run in disguise)').toBeGreaterThan(0);
    });

  it('f16 logits are widened one row at a time and match the fp32 model within f16 rounding of the logits', async () => {
    let worst = -Infinity;
    for (const c of g.cases) {
      const ids = c.prompt_ids;
      const a = await lm.r16.forward(ids, ids.map((_, i) => i), null);
      const b = await lm.r32.forward(ids, ids.map((_, i) => i), null);
      expect(a.logits).toBeInstanceOf(Float32Array);
      expect(a.logits.length).toBe(lm.r16.info.vocabSize);
      // The prefill runs on no past, so the only f16 step is the logits' own rounding.
      for (let i = 0; i < a.logits.length; i++) worst = Math.max(worst, Math.abs(a.logits[i] - b.logits[i]) - halfUlp(b.logits[i]));
    }
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  describe('the Node engine on the fp16 pair', () => {
    let engine: C2CEngine;
    beforeAll(async () => {
      engine = await createNodeC2CEngine(pairOptions(pair.dir));
    });
    afterAll(async () => engine?.dispose());

    it('reports the chosen model and KV dtypes', () => {
      expect(engine.device.models).toEqual({ receiver: { modelDType: 'fp16', kvDType: 'float16' },
        sharer: { modelDType: 'fp16', kvDType: 'float16' } });
    });

    it('every mode runs and gives the PyTorch golden tokens, except near-ties flipped by f16 KV rounding (counted and checked)',
      async () => {
      const tally = { receiver: 0, sharer: 0, c2c: 0, hint: 0, 'text-relay': 0 };
      const flips: string[] = [];
      /** A mismatch must be a flip at a near-tie of the f32 model, with f16-vs-f32 logits within rounding size. */
      const explain = async (what: string, m16: CausalLM, m32: CausalLM, prompt: number[], golden: number[]) => {
        const f = await firstFlip(m16, m32, prompt, golden);
        flips.push(`${what}: step ${f.step}, f32 margin ${f.margin32.toFixed(4)}, |Δlogit| ${f.dev.toFixed(4)}`);
        expect(f.step, `${what}: the side-by-side replay must show the flip`).toBeGreaterThanOrEqual(0);
        expect(f.maxDev, what).toBeLessThan(MAX_LOGIT_DEV);
        expect(f.margin32, what).toBeLessThanOrEqual(2 * f.dev);
      };
      const same = (a: number[] | undefined, b: number[]) => JSON.stringify(a) === JSON.stringify(b);
      for (const c of g.cases) {
        const msgs = [{ role: 'user' as const, content: c.user }];
        const o = { maxNewTokens: g.max_new_tokens, relayMaxTokens: g.hint_max_tokens };
        for (const mode of ['receiver', 'sharer', 'c2c'] as const) {
          const r = await engine.generate(msgs, { ...o, mode });
          if (same(r.tokenIds, c[mode].output_ids)) tally[mode]++;
          else if (mode === 'c2c') expect.fail(`case ${c.case} c2c differs: ${r.tokenIds} vs ${c.c2c.output_ids}`);
          else await explain(`case ${c.case} ${mode}`, mode === 'receiver' ? lm.r16 : lm.s16, mode === 'receiver' ? lm.r32 : lm.s32,
            c.prompt_ids, c[mode].output_ids);
        }
        const t = await engine.generate(msgs, { ...o, mode: 'text-relay' });
        const tr = c.text_relay;
        if (same(t.hint?.tokenIds, tr.hint_ids)) {
          tally.hint++;
          if (same(t.tokenIds, tr.output_ids)) tally['text-relay']++;
          else await explain(`case ${c.case} relay answer`, lm.r16, lm.r32, tr.relay_prompt_ids, tr.output_ids);
        } else await explain(`case ${c.case} relay hint`, lm.s16, lm.s32, tr.hint_prompt_ids, tr.hint_ids);
      }
      console.log(`[fp16 engine] golden matches over ${g.cases.length} cases: ${JSON.stringify(tally)}; flips: ${flips.join(' | ') || 'none'}`);
    });
  });

  it('mixed pair: an fp16 sharer with an fp32 receiver fuses and decodes (ModelSource.dtype per model)', async () => {
    const engine = await createNodeC2CEngine({
      sharer: { id: 'sharer', localPath: pair.dir },
      receiver: { id: 'receiver', localPath: pair.dir, dtype: 'fp32' },
      fuser: path.join(pair.dir, 'fuser'),
    });
    try {
      expect(engine.device.models.sharer.kvDType).toBe('float16');
      expect(engine.device.models.receiver.kvDType).toBe('float32');
      const c = g.cases[0];
      const r = await engine.generate([{ role: 'user', content: c.user }], { mode: 'c2c', maxNewTokens: g.max_new_tokens });
      expect(r.tokenIds).toEqual(c.c2c.output_ids);
    } finally {
      await engine.dispose();
    }
  });

  it('the host hands out f16 KV (returnKV) and takes it back for fusion', async () => {
    const host = new ModelHost(nodePlatform());
    await host.init({ device: 'cpu', allowRemoteModels: false, shareDevice: false, topology: 'node' });
    try {
      const loaded = await host.loadModel('sharer', { id: 'sharer', localPath: pair.dir });
      expect(loaded).toMatchObject({ modelDType: 'fp16', kvDType: 'float16' });
      await host.loadModel('receiver', { id: 'receiver', localPath: pair.dir });
      await host.loadFuser({ url: path.join(pair.dir, 'fuser') });
      const ids = g.cases[0].prompt_ids.slice(0, -1);
      const s = await host.prefill('sharer', { ids, returnKV: true });
      expect(s.kv![0].value.data).toBeInstanceOf(Uint16Array);
      const r = await host.prefill('receiver', { ids, keep: true });
      await host.fuse({ receiverHandle: r.handle!, sharer: { kv: s.kv! } });
      const out = await host.generate('receiver', { handle: r.handle!, ids: [g.cases[0].prompt_ids.at(-1)!], startPos: ids.length,
        maxNewTokens: g.max_new_tokens, seenIds: g.cases[0].prompt_ids });
      expect(out.tokenIds).toEqual(g.cases[0].c2c.output_ids);
      const empty = await host.prefill('receiver', { ids: [], returnKV: true });
      expect(empty.kv![0].key.dtype).toBe('float16');
    } finally {
      await host.dispose();
    }
  });
});
