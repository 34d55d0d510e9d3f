/**
 * Browser side of the Chromium kernel test: loads a golden fixture over HTTP (`/fixtures/<name>/…`), runs the
 * WebGPU fuser on the page's own device (requested by the fuser itself) and reports the max abs error (NaN when
 * any output is not finite: test/util/allclose.ts).
 * `runFixtureInt8` loads the same fixture as int8 and compares with the CPU reference on those weights.
 */
import { loadFuserWeights } from '../../../src/fuser/format/validate';
import { parseSafetensors, tensorToFloat32, tensorToNumbers } from '../../../src/fuser/safetensors';
import { createWebGPUFuser } from '../../../src/fuser/webgpu';
import { fuseCache } from '../../../src/fuser/reference';
import type { FuserConfig, KVCache } from '../../../src/types';
import { maxAbsDiff, maxAbsDiffKV } from '../../util/allclose';

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

export interface BrowserInt8Result {
  weightDType: string;
  /** `navigator.gpu.wgslLanguageFeatures` has packed_4x8_integer_dot_product (→ `unpack4xI8`). */
  packed4x8: boolean;
  weightBytes: number;
  /** max |GPU int8 − CPU reference on the same int8 weights| over every case. */
  maxAbsError: number;
}

async function loadWeights(name: string, weightDType?: 'int8') {
  const base = `/fixtures/${name}`;
  const json = await (await fetch(`${base}/fuser.json`)).json();
  const weights = loadFuserWeights(json, { 'fuser.safetensors': await fetchBytes(`${base}/fuser.safetensors`) }, { weightDType });
  return { base, weights };
}

interface FixtureCase {
  seq: number;
  /** A cache of the case: `receiver` and `sharer` are the inputs, `fused` the expected output. */
  cache(kind: 'receiver' | 'sharer' | 'fused'): KVCache;
}

/** The fixture's cases (`c<i>.seq`, `c<i>.<kind>.<layer>.key|value` in cases.safetensors). */
async function loadCases(base: string, cfg: FuserConfig): Promise<FixtureCase[]> {
  const file = parseSafetensors(await fetchBytes(`${base}/cases.safetensors`), 'cases.safetensors');
  const get = (n: string) => file.tensors.get(n)!;
  const out: FixtureCase[] = [];
  for (let c = 0; file.tensors.has(`c${c}.seq`); c++) {
    const seq = tensorToNumbers(get(`c${c}.seq`))[0];
    out.push({
      seq,
      cache: (kind) => {
        const { numLayers, kvHeads: heads, headDim } = kind === 'sharer' ? cfg.sharer : cfg.receiver;
        return Array.from({ length: numLayers }, (_, l) => ({
          key: { data: tensorToFloat32(get(`c${c}.${kind}.${l}.key`)), heads, seq, headDim },
          value: { data: tensorToFloat32(get(`c${c}.${kind}.${l}.value`)), heads, seq, headDim },
        }));
      },
    });
  }
  return out;
}

async function runFixtureInt8(name: string): Promise<BrowserInt8Result> {
  const { base, weights } = await loadWeights(name, 'int8');
  const cases = await loadCases(base, weights.config);
  const fuser = await createWebGPUFuser(weights);
  const packed4x8 = navigator.gpu.wgslLanguageFeatures?.has('packed_4x8_integer_dot_product') ?? false;
  let maxAbsError = 0;
  try {
    for (const c of cases) {
      const r = c.cache('receiver');
      const s = c.cache('sharer');
      const out = await fuser.fuse(r, s);
      const want = fuseCache(weights, r, s);
      maxAbsError = Math.max(maxAbsError, maxAbsDiffKV(out, want)); // Math.max keeps a NaN once seen
    }
    return { weightDType: fuser.weightDType, packed4x8, weightBytes: fuser.weightBytes, maxAbsError };
  } finally {
    fuser.dispose();
  }
}

async function runFixture(name: string): Promise<BrowserFixtureResult> {
  const { base, weights } = await loadWeights(name);
  const cases = await loadCases(base, weights.config);
  const fuser = await createWebGPUFuser(weights);
  const info = fuser.device.adapterInfo;
  const adapter = `${info?.vendor ?? '?'}/${info?.architecture ?? '?'}`;
  const result: BrowserFixtureResult = { adapter, dtype: fuser.dtype, cases: [] };
  try {
    for (const c of cases) {
      const r = c.cache('receiver');
      const s = c.cache('sharer');
      const want = c.cache('fused');
      const out = await fuser.fuse(r, s);
      let maxAbsError = 0;
      let closedBitIdentical = true;
      out.forEach((layer, l) => {
        for (const p of ['key', 'value'] as const) {
          const got = layer[p].data;
          maxAbsError = Math.max(maxAbsError, maxAbsDiff(got, want[l][p].data)); // Math.max keeps a NaN once seen
          if (weights.layers[l][p].gateLogit <= 0) {
            closedBitIdentical &&= got.every((v, i) => Object.is(v, r[l][p].data[i]));
          }
        }
      });
      result.cases.push({ seq: c.seq, maxAbsError, closedBitIdentical });
    }
  } finally {
    fuser.dispose();
  }
  return result;
}

Object.assign(globalThis, { runFixture, runFixtureInt8 });
document.title = 'ready';
