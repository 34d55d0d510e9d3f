/**
 * The ONNX CPU fuser (onnxruntime-node) with bounded sessions and float16 KV, against the CPU reference on random
 * weights (odd dims, closed gates) and on the shipped pair's trained fuser: one session per layer group under
 * `maxSessionWeightBytes`, the same results however the layers are grouped, f16 / mixed KV in and the receiver's
 * dtype out (within ½ f16 ulp of the f32 math on the same inputs), token ranges and closed paths bit-exact.
 */
import * as ort from 'onnxruntime-node';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createOnnxFuser, groupLayers, type OrtModuleLike } from '../../src/fuser/onnx';
import { fuseCache } from '../../src/fuser/reference';
import { randomFuserWeights, seededRandom } from '../../src/fuser/random-weights';
import { loadFuserFromDirectory } from '../../src/fuser/format/node-io';
import { widenData } from '../../src/kv/ops';
import type { FuserWeights, KVCache } from '../../src/types';
import { randomCache } from '../webgpu/kv-helpers';
import { toF16Cache, toF32Cache } from '../helpers/kv-dtype';
import { PAIR } from '../engine/pair';

const ORT = ort as unknown as OrtModuleLike;
const TOL = 1e-5;
const halfUlp = (v: number) => 2 ** (Math.max(Math.floor(Math.log2(Math.abs(v) || 2 ** -14)), -14) - 11);

function worstExcess(a: KVCache, b: KVCache, allowed: (v: number) => number): number {
  let m = -Infinity;
  a.forEach((l, i) => {
    for (const p of ['key', 'value'] as const) {
      const x = widenData(l[p]), y = widenData(b[i][p]);
      expect(x.length).toBe(y.length);
      for (let k = 0; k < x.length; k++) m = Math.max(m, Number.isNaN(x[k]) ? Infinity : Math.abs(x[k] - y[k]) - allowed(y[k]));
    }
  });
  return m;
}
const sameBits = (a: KVCache[number]['key'], b: KVCache[number]['key']) => (a.dtype ?? 'float32') === (b.dtype ?? 'float32')
  && Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(
  Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));

const closedAt = new Set(['1.value', '3.key', '3.value']);
const weights = randomFuserWeights(77, {
  receiver: { numLayers: 5, kvHeads: 3, headDim: 7 }, sharer: { numLayers: 3, kvHeads: 2, headDim: 5 },
  hiddenDim: 13, intermediateDim: 19, numMlpLayers: 4, gateLogit: (l, p) => (closedAt.has(`${l}.${p}`) ? -1 : 0.5),
});
const rand = seededRandom(78);
const seq = 9;
const r32 = randomCache(rand, 5, 3, seq, 7), s32 = randomCache(rand, 3, 2, seq, 5);
const r16 = toF16Cache(r32), s16 = toF16Cache(s32);

describe('ONNX fuser: layer-group sessions', () => {
  it('groups consecutive open layers under the byte bound (closed layers get no session)', () => {
    const all = groupLayers(weights, Infinity);
    expect(all).toEqual([[0, 1, 2, 4]]);
    expect(groupLayers(weights, 1)).toEqual([[0], [1], [2], [4]]);
    const perPath = 4 * (13 * (10 + 21) + 13 + 3 * 13 * 19 * 2 + 2 * 13 * 13 + 4 * 13 + 3 * 13 + 3 + 21 * 13 + 21);
    // Two open paths per layer except layer 1 (one): a bound of three paths fits [0, 1], then [2], then [4].
    expect(groupLayers(weights, 3 * perPath)).toEqual([[0, 1], [2], [4]]);
    expect(groupLayers(weights, 3 * perPath - 1)).toEqual([[0], [1], [2], [4]]);
  });

  it('every grouping gives the reference result (f32 KV) within 1e-5; closed paths are the receiver bit for bit', async () => {
    const want = fuseCache(weights, r32, s32);
    for (const maxSessionWeightBytes of [Infinity, 1, 40_000]) {
      const fuser = await createOnnxFuser(weights, { ort: ORT, maxSessionWeightBytes, sessionOptions: { intraOpNumThreads: 1 } });
      try {
        expect(fuser.sessionLayers.flat()).toEqual([0, 1, 2, 4]);
        const got = await fuser.fuse(r32, s32);
        expect(worstExcess(got, want, () => TOL)).toBeLessThanOrEqual(0);
        for (const k of closedAt) {
          const [l, p] = k.split('.') as [string, 'key' | 'value'];
          expect(sameBits(got[+l][p], r32[+l][p]), k).toBe(true);
        }
      } finally {
        fuser.dispose();
      }
    }
  });

  it('float16 and mixed KV: the receiver dtype out, within ½ ulp of the f32 math on the same inputs, ranges exact', async () => {
    const fuser = await createOnnxFuser(weights, { ort: ORT, maxSessionWeightBytes: 40_000 });
    try {
      for (const [label, r, s] of [['f16/f16', r16, s16], ['f16 receiver / f32 sharer', r16, s32],
        ['f32 receiver / f16 sharer', r32, s16]] as const) {
        const got = await fuser.fuse(r, s, { start: 2, end: 8 });
        const f16Out = r[0].key.dtype === 'float16';
        got.forEach((l) => expect([l.key.dtype ?? 'float32', l.value.dtype ?? 'float32'], label).toEqual(
          f16Out ? ['float16', 'float16'] : ['float32', 'float32']));
        const want = fuseCache(weights, toF32Cache(r), toF32Cache(s), { start: 2, end: 8 });
        expect(worstExcess(got, want, (v) => (f16Out ? halfUlp(v) : 0) + TOL), label).toBeLessThanOrEqual(0);
        // Tokens outside [2, 8) and closed paths: the receiver's own bits.
        const t = got[0].key, hd = t.headDim;
        for (const tok of [0, 1, 8]) for (let h = 0; h < t.heads; h++) {
          const at = (h * seq + tok) * hd;
          expect(Array.from(t.data.subarray(at, at + hd)), `${label} token ${tok}`).toEqual(
            Array.from(r[0].key.data.subarray(at, at + hd)));
        }
        expect(sameBits(got[3].key, r[3].key), `${label} closed`).toBe(true);
      }
    } finally {
      fuser.dispose();
    }
  });
});

describe.skipIf(!PAIR)('ONNX fuser on the shipped pair\'s trained fuser', () => {
  it('f32 and f16 KV match the reference; one group or one layer per session alike', async () => {
    const w: FuserWeights = await loadFuserFromDirectory(path.join(PAIR!.dir, 'fuser'));
    const cfg = w.config;
    const rr = seededRandom(3);
    const r = randomCache(rr, cfg.receiver.numLayers, cfg.receiver.kvHeads, 17, cfg.receiver.headDim);
    const s = randomCache(rr, cfg.sharer.numLayers, cfg.sharer.kvHeads, 17, cfg.sharer.headDim);
    for (const maxSessionWeightBytes of [undefined, 1]) {
      const fuser = await createOnnxFuser(w, { ort: ORT, maxSessionWeightBytes });
      try {
        expect(worstExcess(await fuser.fuse(r, s), fuseCache(w, r, s), () => TOL)).toBeLessThanOrEqual(0);
        const h = await fuser.fuse(toF16Cache(r), toF16Cache(s));
        expect(worstExcess(h, fuseCache(w, toF32Cache(toF16Cache(r)), toF32Cache(toF16Cache(s))), (v) => halfUlp(v)
          + TOL)).toBeLessThanOrEqual(0);
      } finally {
        fuser.dispose();
      }
    }
  });
});
