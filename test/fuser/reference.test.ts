/**
 * CPU reference fuser vs the PyTorch golden fixtures (test/fixtures/fuser, loaded through loadFuserWeights and
 * parseSafetensors): every case ≤ 1e-5 max abs error, closed gates give the receiver bit for bit, token ranges,
 * untouched inputs, and typed errors for KV that does not fit the fuser.
 */
import { describe, expect, it } from 'vitest';
import { AbortError, DisposedError, InvalidInputError, ShapeMismatchError } from '../../src/errors';
import { createReferenceFuser, fuseCache, fuseLayerPath } from '../../src/fuser/reference';
import type { KVCache } from '../../src/types';
import { cloneCache, listGoldenFixtures, loadGoldenFixture, type GoldenFixture } from './golden';
import { expectAllClose, expectAllCloseKV, maxAbsDiff } from '../util/allclose';

const TOL = 1e-5;
const fixtures: GoldenFixture[] = listGoldenFixtures().map(loadGoldenFixture);
const byName = (n: string): GoldenFixture => {
  const f = fixtures.find((x) => x.name === n);
  if (!f) throw new Error(`fixture ${n} missing`);
  return f;
};

describe('reference fuser vs PyTorch golden fixtures', () => {
  it('has the fixture set the brief asks for', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(4);
    const seqs = fixtures.flatMap((f) => f.cases.map((c) => c.seq));
    expect(Math.min(...seqs)).toBe(1);
    expect(Math.max(...seqs)).toBe(33);
    expect(fixtures.some((f) => f.weights.config.dtype === 'bfloat16')).toBe(true);
    expect(fixtures.some((f) => f.weights.config.numMlpLayers === 4)).toBe(true);
    expect(fixtures.some((f) => f.weights.config.sharer.numLayers < f.weights.config.receiver.numLayers)).toBe(true);
    expect(fixtures.some((f) => f.weights.config.sharer.numLayers > f.weights.config.receiver.numLayers)).toBe(true);
  });

  for (const name of listGoldenFixtures()) {
    it(`${name}: every case within ${TOL} of PyTorch, closed gates exact, inputs untouched`, () => {
      const fx = byName(name);
      let maxErr = 0;
      let closed = 0;
      for (const c of fx.cases) {
        const rBefore = cloneCache(c.receiver);
        const sBefore = cloneCache(c.sharer);
        const fused = fuseCache(fx.weights, c.receiver, c.sharer);
        expect(fused).toHaveLength(fx.weights.config.receiver.numLayers);
        fused.forEach((layer, l) => {
          for (const kv of ['key', 'value'] as const) {
            const got = layer[kv];
            const want = c.expected[l][kv];
            expect([got.heads, got.seq, got.headDim]).toEqual([want.heads, want.seq, want.headDim]);
            const err = expectAllClose(got.data, want.data, { atol: TOL, what: `${name} seq ${c.seq} layer ${l} ${kv}` });
            maxErr = Math.max(maxErr, err);
            expect(got.data).not.toBe(c.receiver[l][kv].data); // a new buffer, never the input
            if (fx.weights.layers[l][kv].gateLogit <= 0) {
              closed++;
              expect(got.data).toEqual(c.receiver[l][kv].data);
            } else {
              // the fused path must move the KV, or this comparison would prove nothing
              expect(maxAbsDiff(got.data, c.receiver[l][kv].data)).toBeGreaterThan(1e-2);
            }
          }
        });
        expect(c.receiver).toEqual(rBefore);
        expect(c.sharer).toEqual(sBefore);
      }
      if (name === 'sharer_more_gates') expect(closed).toBe(3 * fx.cases.length);
      console.log(`[reference] ${name}: max abs error ${maxErr.toExponential(3)} over ${fx.cases.length} cases`);
    });
  }

  it('fuseLayerPath alone matches one layer of the fixture', () => {
    const fx = byName('dims_differ');
    const c = fx.cases[1];
    const l = 2;
    const g = fx.weights.config.layerMap[l];
    const out = fuseLayerPath(fx.weights.layers[l].value, fx.weights.config, c.receiver[l].value, c.sharer[g].value);
    expectAllClose(out.data, c.expected[l].value.data, { atol: TOL, what: `layer ${l} value` });
  });

  it('fuses only tokens in [start, end); others stay the receiver bit for bit', () => {
    const fx = byName('sharer_fewer_mlp4');
    const c = fx.cases[1]; // seq 9
    const [start, end] = [2, 6];
    const fused = fuseCache(fx.weights, c.receiver, c.sharer, { start, end });
    fused.forEach((layer, l) => {
      for (const kv of ['key', 'value'] as const) {
        const { heads, seq, headDim } = layer[kv];
        for (let h = 0; h < heads; h++) {
          for (let t = 0; t < seq; t++) {
            const o = (h * seq + t) * headDim;
            const got = layer[kv].data.subarray(o, o + headDim);
            if (t >= start && t < end) {
              expectAllClose(got, c.expected[l][kv].data.subarray(o, o + headDim),
                { atol: TOL, what: `layer ${l} ${kv} head ${h} token ${t}` });
            } else {
              expect(got).toEqual(c.receiver[l][kv].data.subarray(o, o + headDim));
            }
          }
        }
      }
    });
    const none = fuseCache(fx.weights, c.receiver, c.sharer, { start: 4, end: 4 });
    none.forEach((layer, l) => expect(layer.key.data).toEqual(c.receiver[l].key.data));
  });
});

describe('createReferenceFuser', () => {
  it('implements Fuser: same result as fuseCache, abort and dispose', async () => {
    const fx = byName('gqa_explicit_map');
    const c = fx.cases[0];
    const fuser = createReferenceFuser(fx.weights);
    expect(fuser.backend).toBe('cpu');
    expect(fuser.config).toBe(fx.weights.config);
    const fused = await fuser.fuse(c.receiver, c.sharer);
    expectAllCloseKV(fused, c.expected, { atol: TOL });
    const ac = new AbortController();
    ac.abort();
    await expect(fuser.fuse(c.receiver, c.sharer, { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
    fuser.dispose();
    await expect(fuser.fuse(c.receiver, c.sharer)).rejects.toBeInstanceOf(DisposedError);
  });
});

describe('input validation', () => {
  const fx = byName('gqa_explicit_map'); // receiver 2×4×8, sharer 2×2×16
  const base = fx.cases[0]; // seq 3
  const mutate = (which: 'receiver' | 'sharer', edit: (c: KVCache) => KVCache | void) => {
    const r = cloneCache(base.receiver);
    const s = cloneCache(base.sharer);
    const target = which === 'receiver' ? r : s;
    const replaced = edit(target);
    return () => fuseCache(fx.weights, which === 'receiver' ? (replaced ?? r) : r, which === 'sharer' ? (replaced ?? s) : s);
  };
  const cases: [string, () => unknown, new (...a: never[]) => Error, RegExp][] = [
    ['receiver heads', mutate('receiver', (c) => { c[1].key = { ...c[1].key, heads: 2, headDim: 16 }; }), ShapeMismatchError,
      /receiver\[1\]\.key\.heads is 2.*4/],
    ['sharer headDim', mutate('sharer', (c) => { c[0].value = { ...c[0].value, heads: 4, headDim: 8 }; }), ShapeMismatchError,
      /sharer\[0\]\.value\.heads is 4/],
    ['receiver headDim', mutate('receiver', (c) => { c[0].value = { ...c[0].value, heads: 4, seq: 6, headDim: 4 }; }),
      ShapeMismatchError, /receiver\[0\]\.value\.headDim is 4/],
    ['receiver layer count', mutate('receiver', (c) => c.slice(0, 1)), ShapeMismatchError, /receiver cache has 1 layers.*2/],
    ['sharer layer count', mutate('sharer', (c) => [...c, c[0]]), ShapeMismatchError, /sharer cache has 3 layers.*2/],
    ['sharer seq differs', mutate('sharer', (c) => { c[1].key = { data: new Float32Array(2 * 2 * 16), heads: 2, seq: 2,
      headDim: 16 }; }), ShapeMismatchError, /sharer\[1\]\.key\.seq is 2.*seq is 3/],
    ['seq 0', mutate('receiver', (c) => { c[0].key = { data: new Float32Array(0), heads: 4, seq: 0, headDim: 8 }; }),
      InvalidInputError, /receiver\[0\]\.key\.seq is 0/],
    ['data length', mutate('receiver', (c) => { c[1].value = { ...c[1].value, dtype: 'float32', data: new Float32Array(10) }; }),
      InvalidInputError, /receiver\[1\]\.value\.data has 10 elements/],
    ['range end > seq', () => fuseCache(fx.weights, base.receiver, base.sharer, { start: 0, end: 4 }), InvalidInputError, /token range/],
    ['range start > end', () => fuseCache(fx.weights, base.receiver, base.sharer, { start: 2, end: 1 }), InvalidInputError, /token range/],
  ];
  for (const [what, run, Err, msg] of cases) {
    it(`${what} → ${Err.name}`, () => {
      expect(run).toThrow(Err);
      expect(run).toThrow(msg);
    });
  }

  it('fuseLayerPath validates too, and never mutates its inputs', () => {
    const cfg = fx.weights.config;
    const r = base.receiver[0].key;
    const s = base.sharer[1].key;
    const before = [new Float32Array(r.data), new Float32Array(s.data)];
    expect(() => fuseLayerPath(fx.weights.layers[0].key, cfg, s, r)).toThrow(ShapeMismatchError);
    fuseLayerPath(fx.weights.layers[0].key, cfg, r, s, 1, 3);
    expect(r.data).toEqual(before[0]);
    expect(s.data).toEqual(before[1]);
  });
});
