/**
 * ONNX fuser (src/fuser/onnx: hand-written protobuf + graph builder, run by onnxruntime-node's CPU EP) vs the
 * PyTorch golden fixtures: every case ≤ 1e-5, closed gates bit-identical, token ranges vs the reference, fresh
 * untouched buffers, the reference's typed errors, dispose. The ORT run is the check of the protobuf writer.
 */
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { AbortError, DisposedError, InvalidInputError, ShapeMismatchError } from '../../src/errors';
import { buildFuserGraph } from '../../src/fuser/onnx/graph';
import { createOnnxFuser, type OrtModuleLike } from '../../src/fuser/onnx';
import { encodeModel } from '../../src/fuser/onnx/protobuf';
import { quantizeFuserWeights } from '../../src/fuser/quantize';
import { fuseCache } from '../../src/fuser/reference';
import type { Fuser, KVCache } from '../../src/types';
import { cloneCache, listGoldenFixtures, loadGoldenFixture, type GoldenFixture } from './golden';
import { expectAllClose, expectAllCloseKV, maxAbsDiff } from '../util/allclose';

const TOL = 1e-5;
const ORT = ort as unknown as OrtModuleLike;
const fixtures: GoldenFixture[] = listGoldenFixtures().map(loadGoldenFixture);
const byName = (n: string): GoldenFixture => {
  const f = fixtures.find((x) => x.name === n);
  if (!f) throw new Error(`fixture ${n} missing`);
  return f;
};
const fusers = new Map<string, Fuser>();
async function fuserFor(name: string): Promise<Fuser> {
  let f = fusers.get(name);
  if (!f) {
    f = await createOnnxFuser(byName(name).weights, { ort: ORT, sessionOptions: { intraOpNumThreads: 1 } });
    fusers.set(name, f);
  }
  return f;
}
afterAll(() => fusers.forEach((f) => f.dispose()));

describe('ONNX fuser vs PyTorch golden fixtures', () => {
  it('covers closed gates, explicit maps, num_mlp_layers 4 and bf16 weights', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(4);
    expect(fixtures.some((f) => f.weights.config.dtype === 'bfloat16')).toBe(true);
    expect(fixtures.some((f) => f.weights.config.numMlpLayers === 4)).toBe(true);
    expect(fixtures.some((f) => f.weights.layers.some((l) => l.key.gateLogit <= 0 || l.value.gateLogit <= 0))).toBe(true);
    expect(fixtures.some((f) => Array.isArray(f.json.layer_map))).toBe(true);
  });

  for (const name of listGoldenFixtures()) {
    it(`${name}: every case within ${TOL} of PyTorch, closed gates exact, inputs untouched`, async () => {
      const fx = byName(name);
      const fuser = await fuserFor(name);
      expect(fuser.backend).toBe('cpu');
      let maxErr = 0;
      for (const c of fx.cases) {
        const rBefore = cloneCache(c.receiver);
        const sBefore = cloneCache(c.sharer);
        const fused = await fuser.fuse(c.receiver, c.sharer);
        expect(fused).toHaveLength(fx.weights.config.receiver.numLayers);
        fused.forEach((layer, l) => {
          for (const kv of ['key', 'value'] as const) {
            const got = layer[kv];
            const want = c.expected[l][kv];
            expect([got.heads, got.seq, got.headDim]).toEqual([want.heads, want.seq, want.headDim]);
            expect(got.data).toBeInstanceOf(Float32Array);
            expect(got.data).not.toBe(c.receiver[l][kv].data);
            const err = expectAllClose(got.data, want.data, { atol: TOL, what: `${name} seq ${c.seq} layer ${l} ${kv}` });
            maxErr = Math.max(maxErr, err);
            if (fx.weights.layers[l][kv].gateLogit <= 0) expect(got.data).toEqual(c.receiver[l][kv].data);
            else expect(maxAbsDiff(got.data, c.receiver[l][kv].data)).toBeGreaterThan(1e-2);
          }
        });
        expect(c.receiver).toEqual(rBefore);
        expect(c.sharer).toEqual(sBefore);
      }
      console.log(`[onnx] ${name}: max abs error ${maxErr.toExponential(3)} over ${fx.cases.length} cases`);
    });
  }

  it('fuses only tokens in [start, end) like the reference; others stay the receiver bit for bit', async () => {
    const fx = byName('sharer_fewer_mlp4');
    const c = fx.cases.find((x) => x.seq >= 8)!;
    const fuser = await fuserFor(fx.name);
    for (const [start, end] of [[2, 6], [0, 1], [c.seq - 3, c.seq], [4, 4]]) {
      const got = await fuser.fuse(c.receiver, c.sharer, { start, end });
      const want = fuseCache(fx.weights, c.receiver, c.sharer, { start, end });
      got.forEach((layer, l) => {
        for (const kv of ['key', 'value'] as const) {
          const { heads, seq, headDim } = layer[kv];
          expectAllClose(layer[kv].data, want[l][kv].data, { atol: TOL, what: `[${start}, ${end}) layer ${l} ${kv}` });
          for (let h = 0; h < heads; h++) {
            for (let t = 0; t < seq; t++) {
              if (t >= start && t < end) continue;
              const o = (h * seq + t) * headDim;
              expect(layer[kv].data.subarray(o, o + headDim)).toEqual(c.receiver[l][kv].data.subarray(o, o + headDim));
            }
          }
        }
      });
    }
  });

  it('every gate closed gives the receiver; a single open path matches the reference', async () => {
    const fx = byName('dims_differ');
    const c = fx.cases[fx.cases.length - 1];
    const withGates = (open: (l: number, kv: 'key' | 'value') => boolean) => ({
      ...fx.weights,
      layers: fx.weights.layers.map((layer, l) => ({
        key: { ...layer.key, gateLogit: open(l, 'key') ? 1 : -1 },
        value: { ...layer.value, gateLogit: open(l, 'value') ? 1 : -1 },
      })),
    });
    const closed = await createOnnxFuser(withGates(() => false), { ort: ORT });
    (await closed.fuse(c.receiver, c.sharer)).forEach((layer, l) => {
      expect(layer.key.data).toEqual(c.receiver[l].key.data);
      expect(layer.value.data).toEqual(c.receiver[l].value.data);
    });
    closed.dispose();
    const oneW = withGates((l, kv) => l === 1 && kv === 'value');
    const one = await createOnnxFuser(oneW, { ort: ORT });
    const got = await one.fuse(c.receiver, c.sharer);
    const want = fuseCache(oneW, c.receiver, c.sharer);
    expectAllCloseKV(got, want, { atol: TOL, what: 'one open path' });
    expect(maxAbsDiff(got[1].value.data, c.receiver[1].value.data)).toBeGreaterThan(1e-2);
    one.dispose();
  });

  it('int8 weights (dequantised W′) match the reference on the same int8 model', async () => {
    const fx = byName('dims_differ');
    const q = quantizeFuserWeights(fx.weights);
    const fuser = await createOnnxFuser(q, { ort: ORT });
    for (const c of fx.cases) {
      const got = await fuser.fuse(c.receiver, c.sharer);
      const want = fuseCache(q, c.receiver, c.sharer);
      expectAllCloseKV(got, want, { atol: TOL, what: `int8 seq ${c.seq}` });
    }
    fuser.dispose();
  });

  it('graph reads only the sharer layers that open paths use', () => {
    const fx = byName('sharer_more_gates');
    const { sharerInputs, receiverInputs } = buildFuserGraph(fx.weights)!;
    const cfg = fx.weights.config;
    const want = new Set<string>();
    fx.weights.layers.forEach((layer, l) => {
      for (const kv of ['key', 'value'] as const) if (layer[kv].gateLogit > 0) want.add(`${cfg.layerMap[l]}.${kv}`);
    });
    expect(new Set(sharerInputs.map(([j, kv]) => `${j}.${kv}`))).toEqual(want);
    // Closed paths are not in the graph (the fuser copies the receiver for them).
    expect(receiverInputs).toHaveLength(fx.weights.layers.reduce((n, l) => n + +(l.key.gateLogit > 0) + +(l.value.gateLogit > 0), 0));
    expect(encodeModel(buildFuserGraph(fx.weights)!.graph).length).toBeGreaterThan(4 * cfg.hiddenDim * cfg.intermediateDim);
  });
});

describe('ONNX fuser: validation, abort, dispose', () => {
  const fx = byName('gqa_explicit_map'); // receiver 2×4×8, sharer 2×2×16
  const base = fx.cases[0];
  const mutate = (which: 'receiver' | 'sharer', edit: (c: KVCache) => KVCache | void) => async () => {
    const r = cloneCache(base.receiver);
    const s = cloneCache(base.sharer);
    const replaced = edit(which === 'receiver' ? r : s);
    const fuser = await fuserFor(fx.name);
    return fuser.fuse(which === 'receiver' ? (replaced ?? r) : r, which === 'sharer' ? (replaced ?? s) : s);
  };
  const cases: [string, () => Promise<unknown>, new (...a: never[]) => Error, RegExp][] = [
    ['receiver heads', mutate('receiver', (c) => { c[1].key = { ...c[1].key, heads: 2, headDim: 16 }; }), ShapeMismatchError,
      /receiver\[1\]\.key\.heads is 2.*4/],
    ['sharer heads', mutate('sharer', (c) => { c[0].value = { ...c[0].value, heads: 4, headDim: 8 }; }), ShapeMismatchError,
      /sharer\[0\]\.value\.heads is 4/],
    ['receiver layer count', mutate('receiver', (c) => c.slice(0, 1)), ShapeMismatchError, /receiver cache has 1 layers.*2/],
    ['sharer seq differs', mutate('sharer', (c) => { c[1].key = { data: new Float32Array(2 * 2 * 16), heads: 2, seq: 2,
      headDim: 16 }; }), ShapeMismatchError, /sharer\[1\]\.key\.seq is 2.*seq is 3/],
    ['data length', mutate('receiver', (c) => { c[1].value = { ...c[1].value, dtype: 'float32', data: new Float32Array(10) }; }),
      InvalidInputError, /receiver\[1\]\.value\.data has 10 elements/],
    ['range end > seq', async () => (await fuserFor(fx.name)).fuse(base.receiver, base.sharer, { start: 0, end: 4 }),
      InvalidInputError, /token range/],
  ];
  for (const [what, run, Err, msg] of cases) {
    it(`${what} → ${Err.name}`, async () => {
      await expect(run()).rejects.toBeInstanceOf(Err);
      await expect(run()).rejects.toThrow(msg);
    });
  }

  it('rejects misshapen weights at creation, aborts, and refuses after dispose', async () => {
    const bad = { ...fx.weights, layers: fx.weights.layers.map((l, i) => (i === 1 ? { ...l, key: { ...l.key, mlp1: [] } } : l)) };
    await expect(createOnnxFuser(bad, { ort: ORT })).rejects.toThrow(/layers\[1\]\.key\.mlp1 has 0 FFN blocks/);
    const fuser = await createOnnxFuser(fx.weights, { ort: ORT });
    const ac = new AbortController();
    ac.abort();
    await expect(fuser.fuse(base.receiver, base.sharer, { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
    fuser.dispose();
    await expect(fuser.fuse(base.receiver, base.sharer)).rejects.toBeInstanceOf(DisposedError);
  });
});
