import { describe, expect, it } from 'vitest';
import { SafetensorsFormatError } from '../../src/errors';
import { expectedFuserTensors, loadFuserWeights } from '../../src/fuser/format/validate';
import { serializeFuser } from '../../src/fuser/format/serialise';
import { parseSafetensors, writeSafetensors, type TensorToWrite } from '../../src/fuser/safetensors';
import { randomFuserWeights } from '../../src/fuser/random-weights';
import { roundThrough } from '../../src/util/half';
import type { FuserWeights } from '../../src/types';
import { expectFormatError } from './expect-error';

const FILE = 'fuser.safetensors';

function validFuser(seed = 1) {
  const weights = randomFuserWeights(seed);
  const { json, files } = serializeFuser(weights);
  return { weights, json, bytes: files[FILE] };
}

/** Rebuilds the safetensors file after editing its tensor list. */
function editTensors(bytes: Uint8Array, edit: (t: TensorToWrite[]) => TensorToWrite[]): Uint8Array {
  const list: TensorToWrite[] = [...parseSafetensors(bytes).tensors.values()].map(
    (t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: t.data.slice() }));
  return writeSafetensors(edit(list));
}


function flat(w: FuserWeights): Float32Array[] {
  return w.layers.flatMap((l) =>
    [l.key, l.value].flatMap((p) => [
      p.in.weight, p.in.bias!, p.scalarHead.weight, p.projOut.weight, p.projOut.bias!, new Float32Array([p.gateLogit]),
      ...[...p.mlp1, ...p.scalarMlp2, ...p.projMlp2].flatMap((b) => [b.norm, b.w1.weight, b.w2.weight]),
    ]),
  );
}

describe('fuser format: round trip', () => {
  it('float32 serialise → load gives identical weights and config', () => {
    const { weights, json, bytes } = validFuser();
    const back = loadFuserWeights(JSON.parse(JSON.stringify(json)), { [FILE]: bytes });
    expect(back.config).toEqual(weights.config);
    const a = flat(weights);
    const b = flat(back);
    expect(b.length).toBe(a.length);
    a.forEach((t, i) => expect(Array.from(b[i])).toEqual(Array.from(t)));
  });

  it.each(['float16', 'bfloat16'] as const)('%s storage rounds like the dtype and records it', (dtype) => {
    const { weights } = validFuser(2);
    const { json, files } = serializeFuser(weights, { dtype });
    expect(json.dtype).toBe(dtype);
    const back = loadFuserWeights(json, files);
    expect(back.config.dtype).toBe(dtype);
    const a = flat(weights);
    flat(back).forEach((t, i) => expect(Array.from(t)).toEqual(Array.from(roundThrough(a[i], dtype))));
  });

  it('lists every C2CProjector tensor with official key names', () => {
    const { weights } = validFuser();
    const names = expectedFuserTensors(weights.config).map((t) => t.name);
    expect(names).toContain('0.key_in.weight');
    expect(names).toContain('2.value_proj_mlp2.blocks.0.w2.weight');
    expect(names).toContain('1.key_scalar_mlp2.blocks.0.norm.weight');
    expect(names).toContain('0.value_gate_logit');
    // 3 layers × 2 paths × (in 2 + 3 blocks × 3 + head 2 + out 2 + gate 1)
    expect(names.length).toBe(3 * 2 * 16);
  });

  it('resolves the terminal map and accepts an explicit one', () => {
    const { json, bytes } = validFuser();
    expect(loadFuserWeights(json, { [FILE]: bytes }).config.layerMap).toEqual([0, 0, 1]);
    expect(loadFuserWeights({ ...json, layer_map: [1, 1, 0] }, { [FILE]: bytes }).config.layerMap).toEqual([1, 1, 0]);
  });

  it('ignores gate_temperature buffers but nothing else', () => {
    const { json, bytes } = validFuser();
    const extra = editTensors(bytes, (t) => [...t, { name: '0.gate_temperature', dtype: 'F32', shape: [], data: new Float32Array([1]) }]);
    expect(() => loadFuserWeights(json, { [FILE]: extra })).not.toThrow();
  });
});

describe('fuser format: versions', () => {
  it('writes format_version 2', () => {
    expect(validFuser().json.format_version).toBe(2);
  });

  it('reads version 1 where hidden_dim = intermediate_dim (the same layout)', () => {
    const { weights, json, bytes } = validFuser();
    expect(weights.config.hiddenDim).toBe(weights.config.intermediateDim);
    const back = loadFuserWeights({ ...json, format_version: 1 }, { [FILE]: bytes });
    flat(weights).forEach((t, i) => expect(Array.from(flat(back)[i])).toEqual(Array.from(t)));
  });

  it('reads version 2 with hidden_dim ≠ intermediate_dim: scalar_mlp2 at the hidden width', () => {
    const weights = randomFuserWeights(3, { hiddenDim: 16, intermediateDim: 24 });
    const { json, files } = serializeFuser(weights);
    const back = loadFuserWeights(json, files);
    const p = back.layers[1].value;
    expect([p.scalarMlp2[0].w1.outDim, p.scalarMlp2[0].w2.inDim, p.mlp1[0].w1.outDim, p.projMlp2[0].w2.inDim]).toEqual([16, 16, 24, 24]);
    flat(weights).forEach((t, i) => expect(Array.from(flat(back)[i])).toEqual(Array.from(t)));
  });

  it('refuses version 1 with hidden_dim ≠ intermediate_dim, naming format_version', () => {
    const { json, files } = serializeFuser(randomFuserWeights(3, { hiddenDim: 16, intermediateDim: 24 }));
    expectFormatError(() => loadFuserWeights({ ...json, format_version: 1 }, files),
      /format_version 1 with hidden_dim \(16\) ≠ intermediate_dim \(24\).*format_version 2/, { field: 'format_version', actual: 1 });
  });
});

describe('fuser format: bad fuser.json', () => {
  const { json, bytes } = validFuser();
  const files = { [FILE]: bytes };
  const cases: [string, Record<string, unknown>, RegExp, string][] = [
    ['missing hidden_dim', { hidden_dim: undefined }, /hidden_dim is missing/, 'hidden_dim'],
    ['wrong hidden_dim (does not match tensors)', { hidden_dim: 8 }, /shape/, ''],
    ['zero head_dim', { receiver: { num_layers: 3, num_kv_heads: 2, head_dim: 0 } }, /receiver\.head_dim must be an integer/,
      'receiver.head_dim'],
    ['string kv heads', { sharer: { num_layers: 2, num_kv_heads: '2', head_dim: 4 } }, /sharer\.num_kv_heads/, 'sharer.num_kv_heads'],
    ['missing receiver', { receiver: undefined }, /receiver is missing/, 'receiver'],
    ['bad dtype', { dtype: 'int4' }, /dtype must be one of/, 'dtype'],
    ['bad format', { format: 'other' }, /format must be "c2c-fuser"/, 'format'],
    ['future version', { format_version: 3 }, /format_version must be 1 or 2 .*got 3/, 'format_version'],
    ['other projector class', { projector_class: 'AllInOneProjector' }, /projector_class/, 'projector_class'],
    ['layer map outside the sharer', { layer_map: [0, 1, 2] }, /layer_map\[2\] must be a sharer layer index in \[0, 1\]/, 'layer_map[2]'],
    ['layer map too short', { layer_map: [0, 1] }, /one entry per receiver layer/, 'layer_map'],
    ['layer map garbage', { layer_map: 'nearest' }, /layer_map must be "terminal"/, 'layer_map'],
    ['num_mlp_layers 2', { num_mlp_layers: 2 }, /num_mlp_layers must be an integer ≥ 3/, 'num_mlp_layers'],
    ['negative eps', { rms_norm_eps: -1 }, /rms_norm_eps must be a positive number/, 'rms_norm_eps'],
    ['no files', { files: [] }, /files must be a non-empty array/, 'files'],
    ['path escape', { files: ['../secret.safetensors'] }, /files\[0\] must be a relative file name/, 'files[0]'],
    ['missing file', { files: ['other.safetensors'] }, /"other\.safetensors" is listed in fuser\.json but was not provided/, 'files'],
    ['bad alignment strategy', { alignment: { enabled: true, strategy: 'prefix' } }, /alignment\.strategy/, 'alignment.strategy'],
  ];
  it.each(cases)('%s', (_label, patch, match, field) => {
    const edited: Record<string, unknown> = { ...json, ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete edited[k];
    expectFormatError(() => loadFuserWeights(edited, files), match, field ? { field } : {});
  });

  it('non-object root', () => expectFormatError(() => loadFuserWeights([1, 2], files), /must be a JSON object/));
});

describe('fuser format: bad tensors', () => {
  const { json, bytes } = validFuser();
  const load = (b: Uint8Array) => loadFuserWeights(json, { [FILE]: b });

  it('missing tensor is named', () => {
    const b = editTensors(bytes, (t) => t.filter((x) => x.name !== '1.value_proj_out.bias'));
    expectFormatError(() => load(b), /missing tensor: 1\.value_proj_out\.bias/, { tensor: '1.value_proj_out.bias' });
  });

  it('unexpected tensor is named', () => {
    const b = editTensors(bytes, (t) => [...t, { name: '0.key_proj_mlp2.blocks.1.norm.weight', dtype: 'F32', shape: [16],
      data: new Float32Array(16) }]);
    expectFormatError(() => load(b), /unexpected tensor.*0\.key_proj_mlp2\.blocks\.1\.norm\.weight/,
      { tensor: '0.key_proj_mlp2.blocks.1.norm.weight' });
  });

  it('wrong shape is named with both shapes', () => {
    const b = editTensors(bytes, (t) => t.map((x) => (x.name === '2.key_in.weight' ? { ...x, shape: [24, 16] } : x)));
    expectFormatError(() => load(b), /"2\.key_in\.weight" has shape \[24,16\], expected \[16,24\]/, { tensor: '2.key_in.weight' });
  });

  it('dtype other than declared', () => {
    const b = editTensors(bytes, (t) =>
      t.map((x) => (x.name === '0.key_in.bias' ? { ...x, dtype: 'F16' as const, data: new Uint16Array(16) } : x)),
    );
    expectFormatError(() => load(b), /"0\.key_in\.bias" is stored as F16/, { tensor: '0.key_in.bias', field: 'dtype' });
  });

  it('non-finite weights', () => {
    const b = editTensors(bytes, (t) =>
      t.map((x) => (x.name === '1.key_mlp1.blocks.0.w1.weight' ? { ...x, data: new Float32Array(256).fill(NaN) } : x)),
    );
    expectFormatError(() => load(b), /non-finite/, { tensor: '1.key_mlp1.blocks.0.w1.weight' });
  });

  it('tensor split across two files is accepted; the same tensor twice is not', () => {
    const all = [...parseSafetensors(bytes).tensors.values()].map(
      (t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: t.data.slice() }));
    const a = writeSafetensors(all.slice(0, 40));
    const b = writeSafetensors(all.slice(40));
    const two = { ...json, files: ['a.safetensors', 'b.safetensors'] };
    expect(() => loadFuserWeights(two, { 'a.safetensors': a, 'b.safetensors': b })).not.toThrow();
    const dup = writeSafetensors(all.slice(39));
    expectFormatError(() => loadFuserWeights(two, { 'a.safetensors': a, 'b.safetensors': dup }), /appears in more than one file/);
  });
});

describe('safetensors: structural errors', () => {
  const { json, bytes } = validFuser();
  const load = (b: Uint8Array) => loadFuserWeights(json, { [FILE]: b });
  const expectST = (b: Uint8Array, match: RegExp) => {
    expect(() => load(b)).toThrow(SafetensorsFormatError);
    expect(() => load(b)).toThrow(match);
  };
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const withHeader = (text: string, data: Uint8Array = new Uint8Array()) => {
    const h = new TextEncoder().encode(text);
    const out = new Uint8Array(8 + h.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
    out.set(h, 8);
    out.set(data, 8 + h.length);
    return out;
  };

  it('shorter than 8 bytes', () => expectST(bytes.slice(0, 5), /shorter than the 8-byte header length/));
  it('truncated in the header', () => expectST(bytes.slice(0, 8 + headerLen - 3), /runs past the end of the file/));
  it('truncated in the data', () => expectST(bytes.slice(0, bytes.length - 7), /fall outside the|trailing bytes|needs/));
  it('absurd header length', () => {
    const b = bytes.slice();
    new DataView(b.buffer).setBigUint64(0, 1n << 60n, true);
    expectST(b, /exceeds the .*limit/);
  });
  it('garbled JSON', () => {
    const b = bytes.slice();
    b[8 + 3] = 0x7b; // '{' inside a key string breaks the JSON
    b[8 + 4] = 0x22;
    expectST(b, /not valid UTF-8 JSON|must be/);
  });
  it('invalid UTF-8', () => expectST(withHeader('{"a":"\xff"}'.replace('\xff', '\u0000')).map(
    (v, i, arr) => (i === arr.length - 3 ? 0xff : v)), /not valid UTF-8 JSON/));
  it('unknown dtype', () => expectST(withHeader('{"x":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)),
    /unknown dtype "F8"/));
  it('shape × dtype ≠ byte length', () => expectST(withHeader('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}',
    new Uint8Array(4)), /needs 8 bytes/));
  it('overlapping tensors', () =>
    expectST(withHeader('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      new Uint8Array(8)), /overlaps/));
  it('hole in the buffer', () =>
    expectST(withHeader('{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', new Uint8Array(8)), /unused bytes/));
  it('negative shape', () => expectST(withHeader('{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}'), /non-negative integers/));
  it('metadata must be strings', () => expectST(withHeader('{"__metadata__":{"a":1}}'), /__metadata__\.a must be a string/));
});
