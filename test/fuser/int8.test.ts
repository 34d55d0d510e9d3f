/**
 * int8 fuser weights: the quantisation rule, the int8 file format (round trip, strict loader checks), load-time
 * selection, the accuracy cost on the PyTorch golden fixtures, and the GPU weight-byte count per dtype.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadOfficialCheckpointFromDirectory } from '../../src/checkpoints/node-io';
import { convertOfficialCheckpoint } from '../../src/cli/convert';
import { expectedFuserTensors, loadFuserWeights } from '../../src/fuser/format/validate';
import { loadFuserFromUrl } from '../../src/fuser/format/fetch';
import { serializeFuser } from '../../src/fuser/format/serialise';
import { readManifest } from '../../src/fuser/format/manifest';
import { dequantizeInt8, pathLinears, quantizeFuserWeights, quantizeInt8 } from '../../src/fuser/quantize';
import { randomFuserWeights } from '../../src/fuser/random-weights';
import { loadFuserFromDirectory } from '../../src/fuser/format/node-io';
import { fuseCache } from '../../src/fuser/reference';
import { parseSafetensors, writeSafetensors, type TensorToWrite } from '../../src/fuser/safetensors';
import type { FuserConfig, FuserWeights, LinearParams } from '../../src/types';
import { fuserGpuWeightBytes } from '../../src/fuser/weight-bytes';
import { findPreset, presetFuserParams } from '../../src/presets';
import { listGoldenFixtures, loadGoldenFixture } from './golden';
import { expectAllClose, maxAbsDiff } from '../util/allclose';
import { expectFormatError } from './expect-error';

const FILE = 'fuser.safetensors';


const allLinears = (w: FuserWeights): LinearParams[] => w.layers.flatMap((l) => [...pathLinears(l.key), ...pathLinears(l.value)]);

describe('int8 quantisation rule', () => {
  it('symmetric per-row scale = max|w|/127, q = round half away from zero, clamped', () => {
    const w = new Float32Array([127, 63.5, -63.5, 0.49, /* row 2 */ -2.54, 1.27, 0.005, 0]);
    const { weight: q, scale } = quantizeInt8(w, 2, 4);
    expect(Array.from(scale)).toEqual([1, Math.fround(2.54 / 127)]);
    expect(Array.from(q.subarray(0, 4))).toEqual([127, 64, -64, 0]);
    expect(Array.from(q.subarray(4))).toEqual([-127, 64, 0, 0]); // 1.27/0.02 = 63.5 → 64, sign kept
  });

  it('an all-zero row gets scale 0 and q 0 (no NaN), other rows are unaffected', () => {
    const w = new Float32Array([0, 0, 0, 0.5, -1, 0.25]);
    const { weight: q, scale } = quantizeInt8(w, 2, 3);
    expect(Array.from(scale)).toEqual([0, Math.fround(1 / 127)]);
    expect(Array.from(q)).toEqual([0, 0, 0, 64, -127, 32]);
    expect(Array.from(dequantizeInt8(q, scale, 2, 3)).every(Number.isFinite)).toBe(true);
  });

  it('error per weight ≤ scale/2 and every non-zero row uses ±127', () => {
    const weights = randomFuserWeights(11);
    for (const l of allLinears(weights)) {
      const { weight: q, scale } = quantizeInt8(l.weight, l.outDim, l.inDim);
      const back = dequantizeInt8(q, scale, l.outDim, l.inDim);
      for (let o = 0; o < l.outDim; o++) {
        const [a, b] = [o * l.inDim, (o + 1) * l.inDim];
        expectAllClose(back.subarray(a, b), l.weight.subarray(a, b), { atol: scale[o] / 2, rtol: 1e-7, what: `row ${o}` });
        expect(Math.max(...Array.from(q.subarray(a, b), Math.abs))).toBe(127);
      }
    }
  });

  it('refuses non-finite weights, naming the tensor', () => {
    expectFormatError(() => quantizeInt8(new Float32Array([1, Infinity]), 1, 2, '0.key_in.weight'), /"0\.key_in\.weight".*non-finite/, {
      tensor: '0.key_in.weight',
    });
  });
});

describe('quantizeFuserWeights (load-time selection)', () => {
  const weights = randomFuserWeights(3);
  const before = JSON.stringify(allLinears(weights).map((l) => Array.from(l.weight.subarray(0, 8))));
  const q = quantizeFuserWeights(weights);

  it('quantises every 2-D Linear, keeps 1-D tensors and gates, leaves the input alone', () => {
    expect(q.config.dtype).toBe('int8');
    expect(weights.config.dtype).toBe('float32');
    const a = allLinears(weights);
    const b = allLinears(q);
    expect(b).toHaveLength(a.length);
    b.forEach((l, i) => {
      expect(l.quant).toBeDefined();
      expect(a[i].quant).toBeUndefined();
      expect(l.weight).toEqual(dequantizeInt8(l.quant!.weight, l.quant!.scale, l.outDim, l.inDim));
      expect(l.weight).not.toEqual(a[i].weight); // int8 really changed the values
      expect(l.bias).toBe(a[i].bias);
    });
    expect(q.layers[1].value.mlp1[0].norm).toBe(weights.layers[1].value.mlp1[0].norm);
    expect(q.layers[2].key.gateLogit).toBe(weights.layers[2].key.gateLogit);
    expect(JSON.stringify(allLinears(weights).map((l) => Array.from(l.weight.subarray(0, 8))))).toBe(before);
  });

  it('is idempotent: an int8 fuser is returned with the same int8 data', () => {
    const again = quantizeFuserWeights(q);
    allLinears(again).forEach((l, i) => expect(l.quant).toBe(allLinears(q)[i].quant));
  });
});

describe('int8 fuser file', () => {
  const weights = randomFuserWeights(5);
  const { json, files } = serializeFuser(weights, { dtype: 'int8' });
  const bytes = files[FILE];

  it('stores Linear weights as I8 with an F32 [out] scale each; 1-D tensors and gates F32', () => {
    expect(json.dtype).toBe('int8');
    const st = parseSafetensors(bytes);
    const floatNames = expectedFuserTensors(weights.config).map((t) => t.name);
    expect(st.tensors.size).toBe(floatNames.length + allLinears(weights).length); // + one .scale per Linear
    for (const t of expectedFuserTensors(weights.config)) {
      const stored = st.tensors.get(t.name)!;
      expect(stored.shape).toEqual(t.shape);
      expect(stored.dtype).toBe(t.shape.length === 2 ? 'I8' : 'F32');
      if (t.shape.length === 2) {
        const scale = st.tensors.get(`${t.name}.scale`)!;
        expect([scale.dtype, scale.shape]).toEqual(['F32', [t.shape[0]]]);
      }
    }
  });

  it('round trip: loading gives exactly quantizeFuserWeights, re-serialising is byte-identical', () => {
    const back = loadFuserWeights(json, files);
    const want = quantizeFuserWeights(weights);
    expect(back.config).toEqual(want.config);
    const a = allLinears(want);
    allLinears(back).forEach((l, i) => {
      expect(l.quant!.weight).toEqual(a[i].quant!.weight);
      expect(l.quant!.scale).toEqual(a[i].quant!.scale);
      expect(l.weight).toEqual(a[i].weight);
      expect(l.bias).toEqual(a[i].bias);
    });
    expect(serializeFuser(back).files[FILE]).toEqual(bytes);
  });

  it('is smaller than the f16 file by about half', () => {
    // Wider than the default random fuser, so that the safetensors header does not dominate.
    const wide = randomFuserWeights(6, { receiver: { numLayers: 2, kvHeads: 2, headDim: 32 },
      sharer: { numLayers: 2, kvHeads: 2, headDim: 32 }, hiddenDim: 64, intermediateDim: 64 });
    const [i8, f16, f32] = (['int8', 'float16', 'float32'] as const).map((dtype) => serializeFuser(wide, { dtype }).files[FILE].length);
    expect(i8).toBeLessThan(0.6 * f16);
    expect(i8).toBeLessThan(0.3 * f32);
  });

  it('an int8 fuser serialised as float16 writes its dequantised weights', () => {
    const q = loadFuserWeights(json, files);
    const f16 = serializeFuser(q, { dtype: 'float16' });
    const back = loadFuserWeights(f16.json, f16.files);
    const err = Math.max(...allLinears(back).map((l, i) => maxAbsDiff(l.weight, allLinears(q)[i].weight)));
    expect(err).toBeLessThan(1e-3); // f16 rounding of values ≤ ~0.6
  });

  it('loadFuserWeights { weightDType: "int8" } quantises a float file; on an int8 file it changes nothing', () => {
    const plain = serializeFuser(weights);
    const viaLoad = loadFuserWeights(plain.json, plain.files, { weightDType: 'int8' });
    expect(viaLoad.config.dtype).toBe('int8');
    allLinears(viaLoad).forEach((l, i) => expect(l.quant).toEqual(allLinears(quantizeFuserWeights(weights))[i].quant));
    const fromInt8 = loadFuserWeights(json, files, { weightDType: 'int8' });
    allLinears(fromInt8).forEach((l, i) => expect(l.quant).toEqual(allLinears(viaLoad)[i].quant));
  });
});

describe('loadFuserFromUrl with weightDType', () => {
  it('fetches a float fuser and quantises it', async () => {
    const weights = randomFuserWeights(8);
    const { json, files } = serializeFuser(weights);
    const served: Record<string, Uint8Array | string> = { 'fuser.json': JSON.stringify(json), ...files };
    const fakeFetch = (async (url: string) => {
      const body = served[new URL(url).pathname.split('/').pop()!];
      return body === undefined ? new Response(null, { status: 404 }) : new Response(body as BodyInit);
    }) as typeof fetch;
    const w = await loadFuserFromUrl('http://x.test/fusers/a/', { fetch: fakeFetch, weightDType: 'int8' });
    expect(w.config.dtype).toBe('int8');
    allLinears(w).forEach((l, i) => expect(l.quant).toEqual(allLinears(quantizeFuserWeights(weights))[i].quant));
  });
});

describe('convert (official checkpoint → c2c-web) with dtype int8', () => {
  it('writes an int8 fuser equal to quantising the loaded checkpoint', async () => {
    const src = join(import.meta.dirname, '..', 'fixtures', 'official', 'tiny_qwen');
    const out = mkdtempSync(join(tmpdir(), 'c2c-int8-convert-'));
    try {
      const summary = await convertOfficialCheckpoint(src, out, { dtype: 'int8' });
      expect(summary.dtype).toBe('int8');
      const loaded = await loadFuserFromDirectory(out);
      const want = quantizeFuserWeights(await loadOfficialCheckpointFromDirectory(src));
      expect(loaded.config).toEqual(want.config);
      allLinears(loaded).forEach((l, i) => {
        expect(l.quant!.weight).toEqual(allLinears(want)[i].quant!.weight);
        expect(l.quant!.scale).toEqual(allLinears(want)[i].quant!.scale);
      });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('int8 loader: strict checks', () => {
  const { json, files } = serializeFuser(randomFuserWeights(7), { dtype: 'int8' });
  const list = (): TensorToWrite[] =>
    [...parseSafetensors(files[FILE]).tensors.values()].map(
      (t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: t.data.slice() }));
  const load = (t: TensorToWrite[]) => loadFuserWeights(json, { [FILE]: writeSafetensors(t) });
  const W = '1.value_mlp1.blocks.0.w2.weight';
  const S = `${W}.scale`;
  const withScale = (values: number[]) => list().map((x) => (x.name === S ? { ...x, data: new Float32Array(values) } : x));
  const rows = 16; // hidden dim of randomFuserWeights

  it('missing .scale is named', () => expectFormatError(() => load(list().filter((x) => x.name !== S)),
    /missing tensor: .*w2\.weight\.scale/, { tensor: S }));
  it('extra .scale (for a 1-D tensor) is named', () =>
    expectFormatError(() => load([...list(), { name: '0.key_in.bias.scale', dtype: 'F32', shape: [16],
      data: new Float32Array(16) }]), /unexpected tensor.*0\.key_in\.bias\.scale/, {
      tensor: '0.key_in.bias.scale',
    }));
  it('misshapen .scale is named', () =>
    expectFormatError(() => load(list().map((x) => (x.name === S ? { ...x, shape: [rows + 1], data: new Float32Array(rows + 1) }
      : x))), /w2\.weight\.scale" has shape \[17\], expected \[16\]/, {
      tensor: S,
    }));
  it('a .scale on a float32 fuser is unexpected', () => {
    const plain = serializeFuser(randomFuserWeights(7));
    const t: TensorToWrite[] = [...parseSafetensors(plain.files[FILE]).tensors.values()].map(
      (x) => ({ name: x.name, dtype: x.dtype, shape: x.shape, data: x.data.slice() }));
    t.push({ name: S, dtype: 'F32', shape: [rows], data: new Float32Array(rows) });
    expectFormatError(() => loadFuserWeights(plain.json, { [FILE]: writeSafetensors(t) }), /unexpected tensor/, { tensor: S });
  });
  it('a Linear weight stored F32 in an int8 fuser is refused', () =>
    expectFormatError(
      () => load(list().map((x) => (x.name === W ? { ...x, dtype: 'F32' as const, data: new Float32Array(rows * rows) } : x))),
      /w2\.weight" is stored as F32, but fuser\.json declares dtype "int8" \(I8\)/,
      { tensor: W, field: 'dtype' },
    ));
  it('a scale stored F16 is refused', () =>
    expectFormatError(() => load(list().map((x) => (x.name === S ? { ...x, dtype: 'F16' as const, data: new Uint16Array(rows) }
      : x))), /stored as F16/, { tensor: S }));
  it.each([NaN, Infinity])('non-finite scale %s is named', (v) =>
    expectFormatError(() => load(withScale(Array.from({ length: rows }, (_, i) => (i === 3 ? v : 0.01)))),
      /w2\.weight\.scale" contains a non-finite value at index 3/, { tensor: S, index: 3 }));
  it('a negative scale is refused', () =>
    expectFormatError(() => load(withScale(Array.from({ length: rows }, (_, i) => (i === 5 ? -0.5 : 0.01)))),
      /scale" has -0\.5 at row 5/, { tensor: S, index: 5 }));
  it('-128 is outside the symmetric range', () =>
    expectFormatError(() => load(list().map((x) => (x.name === W ? { ...x, data: new Int8Array(rows * rows).fill(-128, 7, 8) }
      : x))), /holds -128 at index 7/, { tensor: W, index: 7 }));
  it('a zero scale loads as an all-zero row', () => {
    const w = load(withScale(Array.from({ length: rows }, (_, i) => (i === 2 ? 0 : 0.01))));
    const lin = w.layers[1].value.mlp1[0].w2;
    expect(Array.from(lin.weight.subarray(2 * rows, 3 * rows)).every((v) => v === 0)).toBe(true);
    expect(Array.from(lin.weight.subarray(3 * rows, 4 * rows)).some((v) => v !== 0)).toBe(true);
  });
});

describe('int8 accuracy on the PyTorch golden fixtures', () => {
  it.each(listGoldenFixtures())('%s: int8 output stays close to f32, closed gates exact', (name) => {
    const fx = loadGoldenFixture(name);
    const q = quantizeFuserWeights(fx.weights);
    let dev = 0; // max |int8 − f32| over every case, layer, path
    let moved = 0; // max |f32 − receiver|: how far the fuser moves the KV at all
    let vsTorch = 0;
    for (const c of fx.cases) {
      const f32 = fuseCache(fx.weights, c.receiver, c.sharer);
      const i8 = fuseCache(q, c.receiver, c.sharer);
      f32.forEach((layer, l) => {
        for (const kv of ['key', 'value'] as const) {
          if (fx.weights.layers[l][kv].gateLogit <= 0) {
            expect(i8[l][kv].data).toEqual(c.receiver[l][kv].data);
            continue;
          }
          dev = Math.max(dev, maxAbsDiff(i8[l][kv].data, layer[kv].data));
          moved = Math.max(moved, maxAbsDiff(layer[kv].data, c.receiver[l][kv].data));
          vsTorch = Math.max(vsTorch, maxAbsDiff(i8[l][kv].data, c.expected[l][kv].data));
        }
      });
    }
    console.log(`[int8] ${name}: max |int8 − f32| = ${dev.toExponential(3)} (${((100 * dev) / moved).toFixed(2)} % of max |fused − receiver| = ${moved.toFixed(3)}), vs PyTorch ${vsTorch.toExponential(3)}`);
    expect(dev).toBeGreaterThan(1e-5); // quantisation must be visible above f32 noise, or this proves nothing
    expect(dev).toBeLessThan(0.02 * moved); // and small next to what the fuser does
  });
});

describe('GPU weight bytes per dtype', () => {
  const cfgOf = (r: [number, number, number], s: [number, number, number], H: number, I: number, mlp = 3) =>
    ({
      receiver: { numLayers: r[0], kvHeads: r[1], headDim: r[2] },
      sharer: { numLayers: s[0], kvHeads: s[1], headDim: s[2] },
      hiddenDim: H,
      intermediateDim: I,
      numMlpLayers: mlp,
    }) as Pick<FuserConfig, 'receiver' | 'sharer' | 'hiddenDim' | 'intermediateDim' | 'numMlpLayers'>;

  it('counts exactly what the weights hold (padding to 4 included)', () => {
    const w = randomFuserWeights(9, { receiver: { numLayers: 2, kvHeads: 3, headDim: 5 },
      sharer: { numLayers: 2, kvHeads: 1, headDim: 6 }, hiddenDim: 10, intermediateDim: 7 });
    const pad = (n: number) => Math.ceil(n / 4) * 4;
    const q = quantizeFuserWeights(w);
    const lin = allLinears(q);
    const vecs = q.layers.flatMap((l) => [l.key, l.value]).flatMap(
      (p) => [p.in.bias!, ...[...p.mlp1, ...p.scalarMlp2, ...p.projMlp2].map((b) => b.norm), p.scalarHead.bias!, p.projOut.bias!]);
    const i8 = fuserGpuWeightBytes(w.config, 'int8');
    expect(i8.linearBytes).toBe(lin.reduce((s, l) => s + l.outDim * pad(l.inDim), 0));
    expect(i8.scaleBytes).toBe(lin.reduce((s, l) => s + 4 * pad(l.quant!.scale.length), 0));
    expect(i8.vectorBytes).toBe(vecs.reduce((s, v) => s + 4 * pad(v.length), 0));
    const f16 = fuserGpuWeightBytes(w.config, 'f16');
    expect(f16.totalBytes).toBe(2 * [...lin.map((l) => l.weight), ...vecs].reduce((s, v) => s + pad(v.length), 0));
    expect(fuserGpuWeightBytes(w.config, 'f32').totalBytes).toBe(2 * f16.totalBytes);
  });

  const pairs: [string, ReturnType<typeof cfgOf>][] = [
    // receiver 4×2×32, sharer 3×4×16, fuser 96/96 (models/README.md, train/train_all.py)
    ['embedded pair (c2c-tiny)', cfgOf([4, 2, 32], [3, 4, 16], 96, 96)],
  ];
  const qwen = findPreset('qwen3-0.6b+qwen2.5-0.5b')!;
  const qa = qwen.receiver.arch;
  const sa = qwen.sharer.arch;
  pairs.push(['Qwen3-0.6B ← Qwen2.5-0.5B', cfgOf([qa.numLayers, qa.kvHeads, qa.headDim], [sa.numLayers, sa.kvHeads, sa.headDim],
    qwen.fuserHidden, qwen.fuserIntermediate, qwen.fuserMlpLayers)]);
  const trained = join(import.meta.dirname, '..', '..', 'models', 'c2c-tiny', 'fuser', 'fuser.json');
  if (existsSync(trained)) pairs.push(['models/c2c-tiny/fuser', readManifest(JSON.parse(readFileSync(trained, 'utf8'))).config]);

  it.each(pairs)('%s: int8 ≤ 0.55 × f16', (label, cfg) => {
    const [f32, f16, i8] = (['f32', 'f16', 'int8'] as const).map((d) => fuserGpuWeightBytes(cfg, d));
    console.log(`[int8] ${label}: f32 ${f32.totalBytes} B, f16 ${f16.totalBytes} B, int8 ${i8.totalBytes} B (scales ${i8.scaleBytes}, vectors ${i8.vectorBytes}) = ${(i8.totalBytes / f16.totalBytes).toFixed(4)} × f16`);
    expect(i8.totalBytes).toBeLessThanOrEqual(0.55 * f16.totalBytes);
    expect(i8.totalBytes).toBeGreaterThan(0.5 * f16.totalBytes); // scales and f32 vectors cost something
  });

  it('matches the preset parameter count for the Qwen pair (f32 = 4 B × params − gates)', () => {
    const cfg = pairs[1][1];
    expect(fuserGpuWeightBytes(cfg, 'f32').totalBytes).toBe(4 * (presetFuserParams(qwen) - 2 * qa.numLayers));
  });
});
