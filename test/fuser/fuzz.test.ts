/**
 * Fuzz: seeded random mutations of a valid fuser (fuser.json + safetensors). Each must either load or throw
 * FuserFormatError / SafetensorsFormatError — never another exception, never a hang.
 */
import { describe, expect, it } from 'vitest';
import { FuserFormatError, SafetensorsFormatError } from '../../src/errors';
import { loadFuserWeights } from '../../src/fuser/format/validate';
import { serializeFuser } from '../../src/fuser/format/serialise';
import { randomFuserWeights, seededRandom } from '../../src/fuser/random-weights';

const FILE = 'fuser.safetensors';
const MUTATIONS = 2400;

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

function randomValue(r: Rand, depth = 0): unknown {
  const kinds = ['int', 'neg', 'float', 'huge', 'str', 'null', 'bool', 'arr', 'obj', 'nan'] as const;
  switch (pick(r, depth > 2 ? kinds.slice(0, 7) : kinds)) {
    case 'int': return Math.floor(r() * 70);
    case 'neg': return -Math.floor(r() * 5) - 1;
    case 'float': return r() * 10 - 5;
    case 'huge': return pick(r, [2 ** 31, 2 ** 53, 1e300, Number.MAX_SAFE_INTEGER * 4]);
    case 'str': return pick(r, ['', 'terminal', 'float16', 'F32', 'x'.repeat(Math.floor(r() * 20)), '../a', 'fuser.safetensors']);
    case 'null': return null;
    case 'bool': return r() < 0.5;
    case 'arr': return Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r, depth + 1));
    case 'obj': return { num_layers: randomValue(r, depth + 1), num_kv_heads: randomValue(r, depth + 1),
      head_dim: randomValue(r, depth + 1) };
    case 'nan': return pick(r, [NaN, Infinity]);
  }
}

function mutateJson(r: Rand, json: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone(json) as Record<string, any>;
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) {
    const keys = Object.keys(out);
    const key = pick(r, [...keys, 'extra_field']);
    const op = r();
    if (op < 0.25) delete out[key];
    else if (op < 0.5 && out[key] && typeof out[key] === 'object' && !Array.isArray(out[key])) {
      const sub = Object.keys(out[key]);
      if (sub.length) out[key][pick(r, sub)] = randomValue(r);
    } else if (op < 0.6 && Array.isArray(out[key]) && out[key].length) out[key][Math.floor(r() * out[key].length)] = randomValue(r);
    else out[key] = randomValue(r);
  }
  return out;
}

function mutateHeaderJson(r: Rand, bytes: Uint8Array): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const hLen = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hLen))) as Record<string, any>;
  const names = Object.keys(header);
  const name = pick(r, names);
  const field = pick(r, ['dtype', 'shape', 'data_offsets', 'delete', 'rename', 'whole']);
  if (field === 'delete') delete header[name];
  else if (field === 'rename') { header[`${name}x`] = header[name]; delete header[name]; }
  else if (field === 'whole') header[name] = randomValue(r);
  else if (field === 'dtype') header[name].dtype = pick(r, ['F16', 'BF16', 'F64', 'I8', 'F8', 'f32', 7]);
  else if (field === 'shape') header[name].shape = r() < 0.5
    ? (header[name].shape as number[]).map((d: number) => d + pick(r, [-1, 1, 0])) : randomValue(r);
  else header[name].data_offsets = r() < 0.5 ? (header[name].data_offsets as number[]).map((o: number) => o
    + pick(r, [-4, 4, 0, 1])) : randomValue(r);
  const h = new TextEncoder().encode(JSON.stringify(header));
  const data = bytes.subarray(8 + hLen);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function mutateBytes(r: Rand, bytes: Uint8Array): Uint8Array {
  const hLen = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const op = pick(r, ['flipHeader', 'flipData', 'flipLength', 'truncate', 'insert', 'delete', 'zeroRun'] as const);
  let out = bytes.slice();
  const at = (limit: number) => Math.floor(r() * limit);
  switch (op) {
    case 'flipHeader': for (let i = 0, n = 1 + at(4); i < n; i++) out[8 + at(hLen)] = at(256); break;
    case 'flipData': for (let i = 0, n = 1 + at(8); i < n; i++) out[8 + hLen + at(out.length - 8 - hLen)] ^= 1 << at(8); break;
    case 'flipLength': out[at(8)] = at(256); break;
    case 'truncate': out = out.slice(0, at(out.length)); break;
    case 'insert': { const p = at(out.length); out = new Uint8Array(
      [...out.subarray(0, p), ...Array.from({ length: 1 + at(9) }, () => at(256)), ...out.subarray(p)]); break; }
    case 'delete': { const p = at(out.length); out = new Uint8Array([...out.subarray(0, p), ...out.subarray(p + 1 + at(9))]); break; }
    case 'zeroRun': { const p = at(out.length); out.fill(0, p, p + 1 + at(64)); break; }
  }
  return out;
}

describe('fuser loader fuzz', () => {
  it(`sees only typed errors over ${MUTATIONS} seeded mutations`, () => {
    const weights = randomFuserWeights(7, { numMlpLayers: 4 });
    const { json, files } = serializeFuser(weights);
    const bytes = files[FILE];
    const r = seededRandom(20261123);
    const outcomes = { loaded: 0, FuserFormatError: 0, SafetensorsFormatError: 0 };
    const started = performance.now();
    let slowest = 0;
    for (let i = 0; i < MUTATIONS; i++) {
      const kind = pick(r, ['json', 'header', 'bytes', 'both'] as const);
      let j: unknown = json;
      let b = bytes;
      if (kind === 'json' || kind === 'both') j = mutateJson(r, json);
      if (kind === 'header') b = mutateHeaderJson(r, bytes);
      if (kind === 'bytes' || kind === 'both') b = mutateBytes(r, bytes);
      const t0 = performance.now();
      try {
        const w = loadFuserWeights(j, { [FILE]: b });
        expect(w.layers.length).toBe(w.config.receiver.numLayers);
        outcomes.loaded++;
      } catch (e) {
        if (e instanceof FuserFormatError) outcomes.FuserFormatError++;
        else if (e instanceof SafetensorsFormatError) outcomes.SafetensorsFormatError++;
        else throw new Error(`mutation ${i} (${kind}) raised an untyped ${(e as Error)?.name}: ${(e as Error)?.message}`);
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    const total = outcomes.loaded + outcomes.FuserFormatError + outcomes.SafetensorsFormatError;
    expect(total).toBe(MUTATIONS);
    // The mutations must actually exercise both error classes and the success path.
    expect(outcomes.FuserFormatError).toBeGreaterThan(MUTATIONS / 10);
    expect(outcomes.SafetensorsFormatError).toBeGreaterThan(MUTATIONS / 10);
    expect(outcomes.loaded).toBeGreaterThan(0);
    expect(slowest).toBeLessThan(2000); // no pathological case (a hang would hit the test timeout)
    console.log(`[fuzz] ${JSON.stringify(outcomes)} in ${(performance.now() - started).toFixed(0)} ms, slowest ${slowest.toFixed(1)} ms`);
  });
});
