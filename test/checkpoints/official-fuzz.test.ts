/**
 * Fuzz: seeded random mutations of an official-layout folder (bytes of a projector .pt zip, of the pickle inside
 * it, projector_{i}.json, projector_config.json, config.json). Each load must either succeed or throw
 * CheckpointFormatError, never another exception, and no load may take long (a hang would also hit the timeout).
 */
import { describe, expect, it } from 'vitest';
import { CheckpointFormatError } from '../../src/errors';
import { loadOfficialCheckpoint } from '../../src/checkpoints/official';
import { loadFuserSource } from '../../src/fuser-source';
import { memoryFileReader } from '../../src/fuser/format/files';
import { randomFuserWeights, seededRandom } from '../../src/fuser/random-weights';
import { officialFolderFiles, projectorTensors, stateDictPickleOf, encodeStorage, storedZip } from './official-writer';

const MUTATIONS = 2400;
type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const at = (r: Rand, n: number) => Math.floor(r() * n);

function randomValue(r: Rand, depth = 0): unknown {
  const kinds = ['int', 'neg', 'float', 'huge', 'str', 'null', 'bool', 'arr', 'obj', 'nan'] as const;
  switch (pick(r, depth > 2 ? kinds.slice(0, 7) : kinds)) {
    case 'int': return at(r, 70);
    case 'neg': return -at(r, 5) - 1;
    case 'float': return r() * 10 - 5;
    case 'huge': return pick(r, [2 ** 31, 2 ** 53, 1e300, 2 ** 40]);
    case 'str': return pick(r, ['', '0', '1', 'C2CProjector', 'bfloat16', 'torch.float64', 'longest', 'x'.repeat(at(r, 20))]);
    case 'null': return null;
    case 'bool': return r() < 0.5;
    case 'arr': return Array.from({ length: at(r, 4) }, () => randomValue(r, depth + 1));
    case 'obj': return { '0': randomValue(r, depth + 1), value: randomValue(r, depth + 1) };
    case 'nan': return pick(r, [NaN, Infinity]);
  }
}

/** Replaces, deletes or adds a value somewhere in a JSON tree (walks 0..3 levels down). */
function mutateJson(r: Rand, json: unknown): unknown {
  const root = structuredClone(json) as Record<string, unknown>;
  for (let n = 1 + at(r, 3); n > 0; n--) {
    let node: Record<string, unknown> = root;
    for (let d = at(r, 4); d > 0; d--) {
      const keys = Object.keys(node).filter((k) => node[k] && typeof node[k] === 'object');
      if (!keys.length) break;
      node = node[pick(r, keys)] as Record<string, unknown>;
    }
    const keys = Object.keys(node);
    const key = keys.length && r() < 0.85 ? pick(r, keys) : pick(r, ['extra', '7', '0']);
    const op = r();
    if (op < 0.25) delete node[key];
    else if (op < 0.35 && Array.isArray(node)) node.push(randomValue(r));
    else node[key] = randomValue(r);
  }
  return root;
}

function mutateBytes(r: Rand, bytes: Uint8Array, hot?: [number, number]): Uint8Array {
  let out = bytes.slice();
  const where = () => (hot && r() < 0.6 ? hot[0] + at(r, hot[1] - hot[0]) : at(r, out.length));
  switch (pick(r, ['flip', 'set', 'truncate', 'insert', 'delete', 'zeroRun', 'ffRun'] as const)) {
    case 'flip': for (let i = 0, n = 1 + at(r, 6); i < n; i++) out[where()] ^= 1 << at(r, 8); break;
    case 'set': for (let i = 0, n = 1 + at(r, 4); i < n; i++) out[where()] = at(r, 256); break;
    case 'truncate': out = out.slice(0, at(r, out.length)); break;
    case 'insert': {
      const p = where();
      out = new Uint8Array([...out.subarray(0, p), ...Array.from({ length: 1 + at(r, 9) }, () => at(r, 256)), ...out.subarray(p)]);
      break;
    }
    case 'delete': { const p = where(); out = new Uint8Array([...out.subarray(0, p), ...out.subarray(p + 1 + at(r, 9))]); break; }
    case 'zeroRun': { const p = where(); out.fill(0, p, p + 1 + at(r, 32)); break; }
    case 'ffRun': { const p = where(); out.fill(0xff, p, p + 1 + at(r, 8)); break; }
  }
  return out;
}

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as unknown;

describe('official checkpoint loader fuzz', () => {
  it(`sees only CheckpointFormatError over ${MUTATIONS} seeded mutations`, async () => {
    const weights = randomFuserWeights(5, {
      numMlpLayers: 4, receiver: { numLayers: 3, kvHeads: 2, headDim: 4 }, sharer: { numLayers: 2, kvHeads: 1, headDim: 4 },
        hiddenDim: 8, intermediateDim: 12,
    });
    const files = officialFolderFiles(weights, { dtype: 'bfloat16' });
    // The pickle and storages of projector_1, so the pickle can be mutated and re-zipped intact.
    const tensors = projectorTensors(weights.layers[1], weights.config);
    const pkl = stateDictPickleOf(tensors.map((t) => ({ name: t.name, shape: t.shape, numel: t.data.length })), 'bfloat16');
    const storages = tensors.map((t, i): [string, Uint8Array] => [`archive/data/${i}`, encodeStorage(t.data, 'bfloat16')]);
    const zipWith = (p: Uint8Array) => storedZip([['archive/data.pkl', p],
      ['archive/byteorder', new TextEncoder().encode('little')], ...storages]);
    const pt = files['final/projector_1.pt'];
    // The central directory (the zip's own metadata) is where damage is most interesting.
    const cdStart = new DataView(pt.buffer, pt.byteOffset).getUint32(pt.length - 22 + 16, true);
    const targets = ['zip', 'zip-directory', 'pickle', 'projector-json', 'projector-config', 'config'] as const;

    const r = seededRandom(20261201);
    const outcomes: Record<string, number> = { loaded: 0 };
    let slowest = 0;
    const started = performance.now();
    for (let i = 0; i < MUTATIONS; i++) {
      const target = pick(r, targets);
      const m = { ...files };
      if (target === 'zip') m['final/projector_1.pt'] = mutateBytes(r, pt);
      if (target === 'zip-directory') m['final/projector_1.pt'] = mutateBytes(r, pt, [cdStart, pt.length]);
      if (target === 'pickle') m['final/projector_1.pt'] = zipWith(mutateBytes(r, pkl));
      const pj = files['final/projector_2.json'];
      if (target === 'projector-json') m['final/projector_2.json'] = r() < 0.15 ? mutateBytes(r, pj) : enc(mutateJson(r, dec(pj)));
      if (target === 'projector-config') m['final/projector_config.json'] = enc(mutateJson(r, dec(files['final/projector_config.json'])));
      if (target === 'config') m['config.json'] = r() < 0.15 ? mutateBytes(r, files['config.json'])
        : enc(mutateJson(r, dec(files['config.json'])));
      const t0 = performance.now();
      try {
        // Every fourth load goes through the engine's path (format detection, one reader) instead of the loader alone.
        const w = i % 4 === 0 ? (await loadFuserSource(memoryFileReader(m), { url: 'fuzz' })).weights : await loadOfficialCheckpoint(m);
        expect(w.layers.length).toBe(w.config.receiver.numLayers);
        outcomes.loaded++;
      } catch (e) {
        if (!(e instanceof CheckpointFormatError)) {
          throw new Error(`mutation ${i} (${target}) raised ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
        }
        outcomes[target] = (outcomes[target] ?? 0) + 1;
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    // Every target must have produced refusals, and some mutations (inert bytes, unused fields) still load.
    for (const t of targets) expect(outcomes[t] ?? 0, t).toBeGreaterThan(MUTATIONS / targets.length / 10);
    expect(outcomes.loaded).toBeGreaterThan(0);
    expect(slowest).toBeLessThan(2000);
    console.log(`[official fuzz] ${JSON.stringify(outcomes)} in ${(performance.now() - started).toFixed(0)} ms, slowest ${slowest.toFixed(1)} ms`);
  });
});
