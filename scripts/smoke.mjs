#!/usr/bin/env node
/**
 * Smoke run of the built library (dist-lib): loads every golden fuser fixture with the public API, fuses its
 * first case with the CPU reference fuser and prints the max abs error against the PyTorch output.
 * Exits non-zero if any error exceeds 1e-5. Run `npm run build:lib` first (`npm run main` does both).
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lib = await import(join(root, 'dist-lib/index.js'));
const fixtures = join(root, 'test/fixtures/fuser');

function readTensors(path) {
  const f = lib.parseSafetensors(new Uint8Array(readFileSync(path)), path);
  return (name) => {
    const t = f.tensors.get(name);
    if (!t) throw new Error(`${path}: no tensor ${name}`);
    return { data: lib.tensorToFloat32(t), shape: t.shape };
  };
}

let worst = 0;
for (const name of readdirSync(fixtures).filter((d) => existsSync(join(fixtures, d, 'fuser.json'))).sort()) {
  const dir = join(fixtures, name);
  const json = JSON.parse(readFileSync(join(dir, 'fuser.json'), 'utf8'));
  const files = Object.fromEntries(json.files.map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
  const weights = lib.loadFuserWeights(json, files);
  const cfg = weights.config;
  const get = readTensors(join(dir, 'cases.safetensors'));
  const kv = (prefix, layers) =>
    Array.from({ length: layers }, (_, l) => {
      const mk = (p) => {
        const t = get(`c0.${prefix}.${l}.${p}`);
        return lib.kvTensor(t.data, t.shape[0], t.shape[1], t.shape[2]);
      };
      return { key: mk('key'), value: mk('value') };
    });
  const fuser = lib.createReferenceFuser(weights);
  const t0 = performance.now();
  const fused = await fuser.fuse(kv('receiver', cfg.receiver.numLayers), kv('sharer', cfg.sharer.numLayers));
  const ms = performance.now() - t0;
  const expected = kv('fused', cfg.receiver.numLayers);
  let err = 0;
  fused.forEach((layer, l) => {
    for (const p of ['key', 'value']) {
      const a = layer[p].data, b = expected[l][p].data;
      for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
    }
  });
  worst = Math.max(worst, err);
  const dims = (d) => `${d.numLayers}L×${d.kvHeads}×${d.headDim}`;
  console.log(`${name.padEnd(20)} receiver ${dims(cfg.receiver)} ← sharer ${dims(cfg.sharer)}  seq ${fused[0].key.seq}`
    + `  max|err| ${err.toExponential(2)}  ${ms.toFixed(1)} ms`);
  fuser.dispose();
}
console.log(worst <= 1e-5 ? `smoke OK (max abs error ${worst.toExponential(2)} ≤ 1e-5)` : `smoke FAILED (max abs error ${worst})`);
process.exit(worst <= 1e-5 ? 0 : 1);
