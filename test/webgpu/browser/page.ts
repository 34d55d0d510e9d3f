/**
 * Browser side of the Chromium kernel test: loads a golden fixture over HTTP (`/fixtures/<name>/…`), runs the
 * WebGPU fuser on the page's own device (requested by the fuser itself) and reports the max abs error.
 */
import { loadFuserWeights } from '../../../src/fuser/format';
import { parseSafetensors, tensorToFloat32, tensorToNumbers } from '../../../src/fuser/safetensors';
import { createWebGPUFuser } from '../../../src/fuser/webgpu';
import type { KVCache } from '../../../src/kv/types';

export interface BrowserFixtureResult {
  adapter: string;
  dtype: string;
  cases: { seq: number; maxAbsError: number; closedBitIdentical: boolean }[];
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function runFixture(name: string): Promise<BrowserFixtureResult> {
  const base = `/fixtures/${name}`;
  const json = await (await fetch(`${base}/fuser.json`)).json();
  const weights = loadFuserWeights(json, { 'fuser.safetensors': await fetchBytes(`${base}/fuser.safetensors`) });
  const cases = parseSafetensors(await fetchBytes(`${base}/cases.safetensors`), 'cases.safetensors');
  const get = (n: string) => cases.tensors.get(n)!;
  const cfg = weights.config;
  const fuser = await createWebGPUFuser(weights);
  const info = fuser.device.adapterInfo;
  const result: BrowserFixtureResult = { adapter: `${info?.vendor ?? '?'}/${info?.architecture ?? '?'}`, dtype: fuser.dtype, cases: [] };
  try {
    for (let c = 0; cases.tensors.has(`c${c}.seq`); c++) {
      const seq = tensorToNumbers(get(`c${c}.seq`))[0];
      const cache = (kind: string, layers: number, heads: number, headDim: number): KVCache =>
        Array.from({ length: layers }, (_, l) => ({
          key: { data: tensorToFloat32(get(`c${c}.${kind}.${l}.key`)), heads, seq, headDim },
          value: { data: tensorToFloat32(get(`c${c}.${kind}.${l}.value`)), heads, seq, headDim },
        }));
      const r = cache('receiver', cfg.receiver.numLayers, cfg.receiver.kvHeads, cfg.receiver.headDim);
      const s = cache('sharer', cfg.sharer.numLayers, cfg.sharer.kvHeads, cfg.sharer.headDim);
      const want = cache('fused', cfg.receiver.numLayers, cfg.receiver.kvHeads, cfg.receiver.headDim);
      const out = await fuser.fuse(r, s);
      let maxAbsError = 0;
      let closedBitIdentical = true;
      out.forEach((layer, l) => {
        for (const p of ['key', 'value'] as const) {
          const got = layer[p].data;
          got.forEach((v, i) => (maxAbsError = Math.max(maxAbsError, Number.isNaN(v) ? Infinity : Math.abs(v - want[l][p].data[i]))));
          if (weights.layers[l][p].gateLogit <= 0) closedBitIdentical &&= got.every((v, i) => Object.is(v, r[l][p].data[i]));
        }
      });
      result.cases.push({ seq, maxAbsError, closedBitIdentical });
    }
  } finally {
    fuser.dispose();
  }
  return result;
}

(globalThis as unknown as { runFixture: typeof runFixture }).runFixture = runFixture;
document.title = 'ready';
