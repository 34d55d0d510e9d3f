/**
 * Official-layout checkpoints (written by train/make_official_checkpoints.py with torch 1.13): the loader
 * reads dims, layer map and alignment from the JSON files, the bf16 tensors bit-exactly, and the loaded
 * fuser reproduces the float64 PyTorch-side fused outputs. Also: the strict key/shape check and JSON errors.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { AbortError, CheckpointFormatError } from '../../src/errors';
import { loadOfficialCheckpoint, loadOfficialCheckpointWithInfo } from '../../src/checkpoints/official';
import { loadOfficialCheckpointFromDirectory } from '../../src/checkpoints/node-io';
import { urlCheckpointReader } from '../../src/checkpoints/url-reader';
import { readTorchStateDict } from '../../src/checkpoints/torch-archive';
import { fuseCache } from '../../src/fuser/reference';
import { parseSafetensors, tensorToFloat32 } from '../../src/fuser/safetensors';
import { terminalLayerMap } from '../../src/fuser/layer-map';
import { type FuserWeights, type ProjectorPathParams } from '../../src/types';
import { expectAllCloseKV, maxAbsDiffKV } from '../util/allclose';
import { OFFICIAL_DIR, fixtureFile, fixtureFiles, loadExpected, stateDictPickle, torchZip, type TensorSpec } from './helpers';

const DIMS = {
  tiny_qwen: { recv: [4, 2, 8], shr: [3, 1, 8], hidden: 16, inter: 24, mlp: 3, align: { enabled: false, strategy: 'first' } },
  tiny_llama_knn: { recv: [3, 2, 4], shr: [5, 2, 6], hidden: 12, inter: 8, mlp: 4, align: { enabled: true, strategy: 'longest' } },
} as const;

/** Official key → the array the loader put in FuserWeights for it. */
function tensorOf(w: FuserWeights, layer: number, key: string): Float32Array | number {
  const [pathName, ...rest] = key.split('_');
  const path: ProjectorPathParams = w.layers[layer][pathName as 'key' | 'value'];
  const sub = rest.join('_');
  if (sub === 'gate_logit') return path.gateLogit;
  const m = /^(in|scalar_head|proj_out)\.(weight|bias)$/.exec(sub);
  if (m) {
    const lin = { in: path.in, scalar_head: path.scalarHead, proj_out: path.projOut }[m[1] as 'in']!;
    return m[2] === 'weight' ? lin.weight : lin.bias!;
  }
  const b = /^(mlp1|scalar_mlp2|proj_mlp2)\.blocks\.(\d+)\.(norm|w1|w2)\.weight$/.exec(sub);
  if (!b) throw new Error(`unmapped key ${key}`);
  const blocks = { mlp1: path.mlp1, scalar_mlp2: path.scalarMlp2, proj_mlp2: path.projMlp2 }[b[1] as 'mlp1'];
  const block = blocks[Number(b[2])];
  return b[3] === 'norm' ? block.norm : block[b[3] as 'w1' | 'w2'].weight;
}

describe.each(Object.keys(DIMS) as (keyof typeof DIMS)[])('official checkpoint %s', (name) => {
  const d = DIMS[name];

  it('reads dims, layer map (from projector_config.json) and alignment (from config.json)', async () => {
    const { weights, info } = await loadOfficialCheckpointWithInfo(fixtureFiles(name, d.recv[0]));
    const c = weights.config;
    expect([c.receiver.numLayers, c.receiver.kvHeads, c.receiver.headDim]).toEqual(d.recv);
    expect([c.sharer.numLayers, c.sharer.kvHeads, c.sharer.headDim]).toEqual(d.shr);
    expect([c.hiddenDim, c.intermediateDim, c.numMlpLayers]).toEqual([d.hidden, d.inter, d.mlp]);
    expect(c.dtype).toBe('bfloat16');
    expect(c.alignment).toEqual(d.align);
    expect(c.layerMap).toEqual(loadExpected(name, d.recv[0], d.shr[0]).layerMap);
    expect(info.baseModel).toBe('Qwen/Qwen3-0.6B');
    expect(weights.layers).toHaveLength(d.recv[0]);
    expect(weights.layers[0].value.projMlp2).toHaveLength(d.mlp - 2);
  });

  it('loads every bf16 tensor bit-exactly (weights.safetensors holds the torch values in f32)', async () => {
    const w = await loadOfficialCheckpointFromDirectory(join(OFFICIAL_DIR, name));
    const ref = parseSafetensors(fixtureFile(name, 'weights.safetensors'));
    let checked = 0;
    for (const [key, t] of ref.tensors) {
      const [layer, ...rest] = key.split('.');
      const official = rest.join('.');
      if (official === 'gate_temperature') continue; // training buffer, ignored by design
      const expected = tensorToFloat32(t);
      const got = tensorOf(w, Number(layer), official);
      if (typeof got === 'number') expect(got).toBe(expected[0]);
      else expect(Array.from(got)).toEqual(Array.from(expected));
      checked++;
    }
    // Every official key of every layer was compared: per path 7 (in, scalar_head, proj_out, gate) + 3 per FFN block.
    expect(checked).toBe(d.recv[0] * 2 * (7 + 3 * d.mlp));
  });

  it('reproduces the float64 PyTorch-side fused outputs within 1e-5', async () => {
    const w = await loadOfficialCheckpoint(fixtureFiles(name, d.recv[0]));
    const { cases } = loadExpected(name, d.recv[0], d.shr[0]);
    expect(cases.length).toBe(2);
    for (const c of cases) {
      const fused = fuseCache(w, c.receiver, c.sharer);
      expectAllCloseKV(fused, c.fused, { atol: 1e-5, what: `${name} fused` });
      // The fusion really changes open-gate layers (a loader that zeroed weights would not pass above,
      // but make the signal explicit): at least one layer differs from the receiver by > 1e-2.
      expect(maxAbsDiffKV(c.fused, c.receiver)).toBeGreaterThan(1e-2);
    }
  });
});

describe('layer map and JSON handling', () => {
  it('uses the stored (non-terminal) map instead of recomputing it', async () => {
    const w = await loadOfficialCheckpoint(fixtureFiles('tiny_llama_knn', 3));
    expect(w.config.layerMap).toEqual([0, 2, 4]);
    expect(terminalLayerMap(3, 5)).not.toEqual([0, 2, 4]);
    // A different stored map changes the result: the file is really what is read.
    const files = fixtureFiles('tiny_llama_knn', 3);
    files['final/projector_config.json'] = new TextEncoder().encode(
      JSON.stringify({ 0: { 1: { 0: [[1, 0]], 1: [[3, 1], [0, 1]], 2: [[4, 2]] } } }));
    expect((await loadOfficialCheckpoint(files)).config.layerMap).toEqual([1, 3, 4]);
  });

  it('uses the projector index from projector_config.json', async () => {
    const files = fixtureFiles('tiny_qwen', 4);
    const swapped = { 0: { 1: { 0: [[0, 3]], 1: [[0, 1]], 2: [[1, 2]], 3: [[2, 0]] } } };
    files['final/projector_config.json'] = new TextEncoder().encode(JSON.stringify(swapped));
    const a = await loadOfficialCheckpoint(fixtureFiles('tiny_qwen', 4));
    const b = await loadOfficialCheckpoint(files);
    expect(Array.from(b.layers[0].key.in.weight)).toEqual(Array.from(a.layers[3].key.in.weight));
    expect(Array.from(b.layers[3].value.projOut.bias!)).toEqual(Array.from(a.layers[0].value.projOut.bias!));
  });

  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const cases: [string, (f: Record<string, Uint8Array>) => void, RegExp][] = [
    ['missing file', (f) => delete f['final/projector_2.pt'], /missing file 'final\/projector_2\.pt'/],
    ['wrong class', (f) => (f['final/projector_1.json'] = enc({ class: 'AllInOneProjector', init_args: {} })),
      /projector_1\.json.*AllInOneProjector/],
    ['missing init arg', (f) => {
      const j = JSON.parse(new TextDecoder().decode(f['final/projector_0.json']));
      delete j.init_args.hidden_dim;
      f['final/projector_0.json'] = enc(j);
    }, /init_args\.hidden_dim/],
    ['two sharers', (f) => (f['final/projector_config.json'] = enc({ 0: { 1: { 0: [[0, 0]] }, 2: { 0: [[0, 0]] } } })), /only one sharer/],
    ['gap in layers', (f) => (f['final/projector_config.json'] = enc({ 0: { 1: { 0: [[0, 0]], 2: [[1, 2]] } } })), /exactly 0\.\.1/],
    ['bad strategy with alignment on', (f) => (f['config.json'] = enc(
      { model: { is_do_alignment: true, alignment_strategy: 'prefix' } })), /alignment_strategy/],
    ['config not JSON', (f) => (f['config.json'] = new Uint8Array([0x7b, 0x7b])), /config\.json: not valid JSON/],
    ['num_layers 2 (upstream needs >= 3)', (f) => {
      const j = JSON.parse(new TextDecoder().decode(f['final/projector_0.json']));
      j.init_args.num_layers = 2;
      f['final/projector_0.json'] = enc(j);
    }, /projector_0\.json: init_args\.num_layers must be an integer >= 3, got 2/],
    ['dims that disagree with the weights', (f) => {
      // Same out_dim (2×8 = 1×16) but scalar_head has one row per receiver head: only a shape check catches it.
      const j = JSON.parse(new TextDecoder().decode(f['final/projector_0.json']));
      Object.assign(j.init_args, { target_num_heads: 1, target_dim: 16 });
      for (let i = 0; i < 4; i++) f[`final/projector_${i}.json`] = enc(j);
    }, /wrong shape 'key_scalar_head\.weight' \[2, 16\] \(expected \[1, 16\]\)/],
  ];
  it.each(cases)('rejects %s with CheckpointFormatError', async (_label, mutate, message) => {
    const files = fixtureFiles('tiny_qwen', 4);
    mutate(files);
    const err = await loadOfficialCheckpoint(files).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointFormatError);
    expect((err as Error).message).toMatch(message);
  });
});

describe('browser-style loading through fetch', () => {
  it('loads from a base URL with an injected fetch, and names a 404', async () => {
    const files = fixtureFiles('tiny_qwen', 4);
    const requested: string[] = [];
    const fakeFetch = (async (url: string) => {
      const path = new URL(url).pathname.replace('/fusers/tiny/', '');
      requested.push(path);
      const body = files[path];
      return body ? new Response(new Uint8Array(body)) : new Response('not found', { status: 404, statusText: 'Not Found' });
    }) as unknown as typeof fetch;
    const w = await loadOfficialCheckpoint(urlCheckpointReader('https://example.test/fusers/tiny', { fetch: fakeFetch }));
    const direct = await loadOfficialCheckpoint(files);
    expect(w.config).toEqual(direct.config);
    expect(Array.from(w.layers[2].value.in.weight)).toEqual(Array.from(direct.layers[2].value.in.weight));
    expect(requested).toContain('final/projector_3.pt');
    delete files['final/projector_1.json'];
    const err = await loadOfficialCheckpoint(urlCheckpointReader('https://example.test/fusers/tiny/', { fetch: fakeFetch })).catch(
      (e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointFormatError);
    expect((err as Error).message).toMatch(/cannot fetch 'final\/projector_1\.json' \(404 Not Found\)/);
  });
});

describe('progress and cancellation', () => {
  it('reports each projector and stops between files when aborted', async () => {
    const seen: string[] = [];
    const ctrl = new AbortController();
    const err = await loadOfficialCheckpoint(fixtureFiles('tiny_qwen', 4), {
      signal: ctrl.signal,
      onProgress: (done, total, file) => {
        seen.push(`${done}/${total} ${file}`);
        if (done === 2) ctrl.abort();
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(seen).toEqual(['1/4 final/projector_0.pt', '2/4 final/projector_1.pt']);
  });
});

describe('strict key and shape check', () => {
  /** projector_0 of tiny_qwen as editable specs (the real tensors, rewritten by the test's torch-style writer). */
  function specs(): TensorSpec[] {
    const t = readTorchStateDict(fixtureFile('tiny_qwen', 'final', 'projector_0.pt'), 'projector_0.pt');
    return [...t.values()].map((x) => ({ name: x.name, data: x.data, shape: x.shape }));
  }
  async function loadWith(s: TensorSpec[]): Promise<unknown> {
    const files = fixtureFiles('tiny_qwen', 4);
    files['final/projector_0.pt'] = torchZip(stateDictPickle(s), s);
    return loadOfficialCheckpoint(files).catch((e: unknown) => e);
  }

  it('accepts the rewritten, unchanged state dict (control)', async () => {
    const w = (await loadWith(specs())) as FuserWeights;
    const orig = await loadOfficialCheckpoint(fixtureFiles('tiny_qwen', 4));
    expect(Array.from(w.layers[0].key.in.weight)).toEqual(Array.from(orig.layers[0].key.in.weight));
  });

  it('names a missing key', async () => {
    const err = await loadWith(specs().filter((s) => s.name !== 'value_proj_out.bias'));
    expect(err).toBeInstanceOf(CheckpointFormatError);
    expect((err as Error).message).toMatch(/projector_0\.pt.*missing 'value_proj_out\.bias'/);
    expect((err as CheckpointFormatError).details.missing).toEqual(['value_proj_out.bias']);
  });

  it('names an unexpected key (e.g. a second proj_mlp2 block)', async () => {
    const s = specs();
    const extra = s.find((x) => x.name === 'key_proj_mlp2.blocks.0.norm.weight')!;
    const err = await loadWith([...s, { ...extra, name: 'key_proj_mlp2.blocks.1.norm.weight' }]);
    expect((err as Error).message).toMatch(/unexpected 'key_proj_mlp2\.blocks\.1\.norm\.weight'/);
  });

  it('names a misshapen key with both shapes', async () => {
    const s = specs().map((x) => (x.name === 'key_in.weight' ? { ...x, shape: [x.shape[1], x.shape[0]] } : x));
    const err = await loadWith(s);
    expect((err as Error).message).toMatch(/wrong shape 'key_in\.weight' \[24, 16\] \(expected \[16, 24\]\)/);
  });

  it('refuses scalar_mlp2 at the intermediate width (a layout upstream never builds)', async () => {
    // tiny_qwen: hidden 16, intermediate 24; upstream's scalar_mlp2 is [16, 16] / [16, 16].
    const s = specs().map((x) => {
      if (x.name === 'key_scalar_mlp2.blocks.0.w1.weight') return { ...x, shape: [24, 16], data: new Float32Array(24 * 16) };
      if (x.name === 'key_scalar_mlp2.blocks.0.w2.weight') return { ...x, shape: [16, 24], data: new Float32Array(16 * 24) };
      return x;
    });
    const err = (await loadWith(s)) as CheckpointFormatError;
    expect(err).toBeInstanceOf(CheckpointFormatError);
    const misshapen = (err.details.misshapen as { key: string }[]).map((m) => m.key);
    expect(misshapen).toEqual(['key_scalar_mlp2.blocks.0.w1.weight', 'key_scalar_mlp2.blocks.0.w2.weight']);
    expect(err.message).toMatch(/'key_scalar_mlp2\.blocks\.0\.w1\.weight' \[24, 16\] \(expected \[16, 16\]\)/);
  });

  it('reports all problems at once', async () => {
    const s = specs()
      .filter((x) => x.name !== 'key_gate_logit')
      .map((x) => (x.name === 'value_scalar_head.bias' ? { ...x, shape: [1, 2] } : x));
    s.push({ name: 'lm_head.weight', data: new Float32Array(4), shape: [2, 2] });
    const err = (await loadWith(s)) as CheckpointFormatError;
    expect(err.details.missing).toEqual(['key_gate_logit']);
    expect(err.details.unexpected).toEqual(['lm_head.weight']);
    expect((err.details.misshapen as { key: string }[]).map((m) => m.key)).toEqual(['value_scalar_head.bias']);
  });

  it('ignores gate_temperature and accepts a [1]-shaped gate logit', async () => {
    const s = specs()
      .filter((x) => x.name !== 'gate_temperature')
      .map((x) => (x.name === 'value_gate_logit' ? { ...x, shape: [1] } : x));
    const w = (await loadWith(s)) as FuserWeights;
    expect(w.layers[0].value.gateLogit).toBe(0.75);
  });
});
