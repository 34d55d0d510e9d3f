/**
 * Unit checks of the generator's building blocks: the weight stream is src/util/seeded-random.ts's
 * mulberry32 sequence with the stated distribution; q8 weight quantization follows onnxruntime's rule; the
 * pickle writer's output is what our restricted unpickler (and CPython, in fuser.test.ts) reads back; the
 * zip writer aligns data and fflate reads it; lazy protobuf pieces give the same bytes as finish().
 */
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { PickleDict, TensorRef, unpickle } from '../../src/checkpoints/unpickler';
import { modelWriter, DataType, type GraphSpec } from '../../src/fuser/onnx/protobuf';
import { fillNormalish, tensorSeed } from '../../src/standins/random';
import { quantizeSymmetricInt8, roundHalfEven } from '../../src/standins/q8';
import { PyDict, PyGlobal, PyPersistentId, PyReduce, PyTuple, pickle } from '../../src/standins/pickle';
import { zipStored } from '../../src/standins/zip-store';
import { seededRandom } from '../../src/util/seeded-random';

describe('weight stream', () => {
  it('is the seededRandom (mulberry32) sequence, four bytes summed per value', () => {
    const n = 10_000;
    const got = fillNormalish(new Float32Array(n), 1234, 1);
    const r = seededRandom(1234);
    const std = Math.sqrt((4 * (256 * 256 - 1)) / 12);
    for (let i = 0; i < n; i++) {
      const x = (r() * 2 ** 32) >>> 0;
      expect(got[i]).toBe(Math.fround(((x & 255) + ((x >>> 8) & 255) + ((x >>> 16) & 255) + (x >>> 24) - 510) / std));
    }
  });

  it('has mean ≈ 0, the asked std, ±3.45σ bounds; streams differ per tensor name and seed', () => {
    const v = fillNormalish(new Float32Array(200_000), tensorSeed(1, 'a'), 0.02, 1);
    let s = 0, s2 = 0, max = 0;
    for (const x of v) {
      s += x - 1;
      s2 += (x - 1) ** 2;
      max = Math.max(max, Math.abs(x - 1));
    }
    expect(Math.abs(s / v.length)).toBeLessThan(2e-4);
    expect(Math.sqrt(s2 / v.length)).toBeCloseTo(0.02, 3);
    expect(max).toBeLessThanOrEqual(0.02 * 3.451);
    expect(new Set([tensorSeed(1, 'a'), tensorSeed(1, 'b'), tensorSeed(2, 'a')]).size).toBe(3);
  });
});

describe('q8 weights', () => {
  it('symmetric per-tensor int8: scale max|w|/127, round half to even in float32, zero point 0', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, -2.6].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, 2, -3]);
    // max|w| = 127/128: scale is exactly 1/128, so w / scale is exact and the ties are real ties.
    const w = Float32Array.from([127, -63.5, 32.5, 95.25, 0, -0.5, -127], (x) => x / 128);
    const { q, scale } = quantizeSymmetricInt8(w);
    expect(scale).toBe(1 / 128);
    expect(Array.from(q)).toEqual([127, -64, 32, 95, 0, 0, -127]);
    const big = quantizeSymmetricInt8(Float32Array.of(3, -1e-9));
    expect([big.scale, ...big.q]).toEqual([Math.fround(3 / 127), 127, 0]);
  });
});

describe('pickle writer', () => {
  it('writes a state dict our restricted unpickler reads back (tensor refs, memo, BUILD state)', () => {
    const storage = (key: string, n: number) => new PyPersistentId(
      new PyTuple(['storage', new PyGlobal('torch', 'BFloat16Storage'), key, 'cpu', n]));
    const hooks = () => new PyReduce(new PyGlobal('collections', 'OrderedDict'), new PyTuple([]));
    const rebuild = new PyGlobal('torch._utils', '_rebuild_tensor_v2');
    const t = (key: string, shape: number[], stride: number[]) => new PyReduce(rebuild,
      new PyTuple([storage(key, shape.reduce((a, b) => a * b, 1)), 0, new PyTuple(shape), new PyTuple(stride), false, hooks()]));
    const meta = new PyDict([['', new PyDict([['version', 1]])], ['w', new PyDict([['version', 1]])]], true);
    const root = new PyDict([['w.weight', t('0', [300, 70000], [70000, 1])], ['gate', t('1', [], [])]], true,
      new PyDict([['_metadata', meta]]));
    const out = unpickle(pickle(root), 'test');
    expect(out).toBeInstanceOf(PickleDict);
    const d = out as PickleDict;
    expect([...d.entries.keys()]).toEqual(['w.weight', 'gate']);
    const w = d.entries.get('w.weight') as TensorRef;
    expect([w.shape, w.stride, w.offset, w.storage.key, w.storage.dtype, w.storage.numel]).toEqual(
      [[300, 70000], [70000, 1], 0, '0', 'bfloat16', 21_000_000]);
    expect((d.entries.get('gate') as TensorRef).shape).toEqual([]);
  });
});

describe('zip writer', () => {
  it('stored entries, data 64-byte aligned, read back by fflate', () => {
    const entries = [{ name: 'a/data.pkl', data: Uint8Array.of(1, 2, 3) }, { name: 'a/data/0', data: new Uint8Array(1000).fill(7) },
      { name: 'a/version', data: new TextEncoder().encode('3\n') }];
    const zip = zipStored(entries);
    const back = unzipSync(zip);
    for (const e of entries) expect(back[e.name]).toEqual(e.data);
    const dv = new DataView(zip.buffer);
    let pos = 0;
    for (const e of entries) {
      expect(dv.getUint32(pos, true)).toBe(0x04034b50);
      const start = pos + 30 + dv.getUint16(pos + 26, true) + dv.getUint16(pos + 28, true);
      expect(start % 64).toBe(0);
      pos = start + e.data.length;
    }
  });
});

describe('protobuf writer', () => {
  it('lazy raw tensors stream the same bytes finish() gives, producing each once', () => {
    let produced = 0;
    const g: GraphSpec = {
      name: 'g',
      nodes: [{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }],
      initializers: [{ name: 'w', dims: [4], dataType: DataType.FLOAT,
        raw: { length: 16, produce: () => (produced++, new Uint8Array(Float32Array.of(1, 2, 3, 4).buffer)) } }],
      inputs: [{ name: 'x', dims: ['n', 4] }],
      outputs: [{ name: 'y', dims: ['n', 4] }],
    };
    const streamed = [...modelWriter(g).pieces()];
    const joined = new Uint8Array(streamed.reduce((n, p) => n + p.length, 0));
    streamed.reduce((o, p) => (joined.set(p, o), o + p.length), 0);
    expect(produced).toBe(1);
    expect(modelWriter(g).finish()).toEqual(joined);
    expect(produced).toBe(2);
  });
});
