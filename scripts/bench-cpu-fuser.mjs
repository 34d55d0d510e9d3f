#!/usr/bin/env node
/**
 * CPU fuser benchmark, in one run: the plain-JS reference fuser (`fuseCache`) vs the ONNX fuser
 * (`createOnnxFuser`) on onnxruntime-node's CPU EP and on onnxruntime-web's wasm EP (the browser's CPU path,
 * run here in Node), for the embedded pair's fuser (models/c2c-tiny/fuser) on random KV of the pair's shapes.
 * Each timing is the median of --reps runs after one warm-up; the ONNX session is created once per fuser.
 * Writes bench/cpu-fuser.json. TS modules load through vite's ssrLoadModule (no build step).
 *
 * Flags: --tokens 48,256 (sequence lengths), --reps N (default 15), --wasm-threads N (onnxruntime-web's wasm
 *        thread pool, default all cores), --fuser DIR, --out FILE.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createServer } from 'vite';

const REPO = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const tokens = opt('--tokens', '48,256').split(',').map(Number);
const reps = Number(opt('--reps', '15'));
const fuserDir = path.resolve(REPO, opt('--fuser', 'models/c2c-tiny/fuser'));
const outFile = path.resolve(REPO, opt('--out', 'bench/cpu-fuser.json'));

const vite = await createServer({ root: REPO, configFile: false, logLevel: 'error', appType: 'custom',
  server: { middlewareMode: true, hmr: false, ws: false } });
const load = (p) => vite.ssrLoadModule(p);
const { loadFuserFromDirectory } = await load('/src/fuser/format/node-io.ts');
const { fuseCache } = await load('/src/fuser/reference.ts');
const { createOnnxFuser } = await load('/src/fuser/onnx/index.ts');
const { seededRandom } = await load('/src/fuser/random-weights.ts');

const weights = await loadFuserFromDirectory(fuserDir);
const cfg = weights.config;
const rand = seededRandom(7);
const kvCache = (dims, seq) => Array.from({ length: dims.numLayers }, () => {
  const t = () => ({ data: Float32Array.from({ length: dims.kvHeads * seq * dims.headDim }, () => rand() * 2 - 1),
    heads: dims.kvHeads, seq, headDim: dims.headDim });
  return { key: t(), value: t() };
});

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function timeIt(fn) {
  await fn(); // warm-up (first-run allocations)
  const t = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  return +median(t).toFixed(3);
}
const maxAbs = (a, b) => a.reduce((m, _, l) => Math.max(m, ...['key', 'value'].map((kv) => {
  let d = 0;
  for (let i = 0; i < a[l][kv].data.length; i++) d = Math.max(d, Math.abs(a[l][kv].data[i] - b[l][kv].data[i]));
  return d;
})), 0);

/** FLOPs of one fused token over every open path (2 per multiply-add of each Linear). */
function flopsPerToken() {
  let f = 0;
  for (const layer of weights.layers) {
    for (const p of [layer.key, layer.value]) {
      if (!(p.gateLogit > 0)) continue;
      const lin = (q) => 2 * q.inDim * q.outDim;
      f += lin(p.in) + lin(p.scalarHead) + lin(p.projOut);
      for (const b of [...p.mlp1, ...p.scalarMlp2, ...p.projMlp2]) f += lin(b.w1) + lin(b.w2);
    }
  }
  return f;
}

const backends = [];
const ortNode = await import('onnxruntime-node');
backends.push({ name: 'onnx-node-cpu', make: () => createOnnxFuser(weights, { ort: ortNode }) });
backends.push({ name: 'onnx-node-cpu-1thread', make: () => createOnnxFuser(weights,
  { ort: ortNode, sessionOptions: { intraOpNumThreads: 1 } }) });
try {
  const ortWeb = await import('onnxruntime-web');
  ortWeb.env.wasm.numThreads = Number(opt('--wasm-threads', String(os.availableParallelism())));
  backends.push({ name: 'onnx-web-wasm', make: () => createOnnxFuser(weights, { ort: ortWeb, executionProviders: ['wasm'] }) });
} catch (e) {
  console.warn(`onnxruntime-web unavailable in Node, skipping its wasm EP: ${e.message}`);
}

const rows = [];
const fusers = [];
for (const b of backends) {
  const t0 = performance.now();
  try {
    fusers.push({ name: b.name, fuser: await b.make(), createMs: +(performance.now() - t0).toFixed(1) });
  } catch (e) {
    console.warn(`${b.name}: session creation failed: ${e.message}`);
  }
}
for (const seq of tokens) {
  const receiver = kvCache(cfg.receiver, seq);
  const sharer = kvCache(cfg.sharer, seq);
  const ref = fuseCache(weights, receiver, sharer);
  const gflop = (flopsPerToken() * seq) / 1e9;
  const refMs = await timeIt(async () => fuseCache(weights, receiver, sharer));
  const row = { tokens: seq, gflop: +gflop.toFixed(4), referenceMs: refMs, referenceGflops: +(gflop / (refMs / 1e3)).toFixed(2), onnx: {} };
  for (const { name, fuser } of fusers) {
    const out = await fuser.fuse(receiver, sharer);
    const ms = await timeIt(() => fuser.fuse(receiver, sharer));
    row.onnx[name] = { ms, gflops: +(gflop / (ms / 1e3)).toFixed(2), speedup: +(refMs / ms).toFixed(1),
      maxAbsDiffVsReference: maxAbs(out, ref) };
  }
  rows.push(row);
  console.log(JSON.stringify(row));
}
for (const { fuser } of fusers) fuser.dispose();

const result = {
  what: 'CPU fuser: plain-JS reference vs ONNX graph on onnxruntime (whole cache, all layers, K and V, random KV)',
  fuser: path.relative(REPO, fuserDir),
  config: { receiver: cfg.receiver, sharer: cfg.sharer, hiddenDim: cfg.hiddenDim, intermediateDim: cfg.intermediateDim,
    numMlpLayers: cfg.numMlpLayers },
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  reps,
  wasmThreads: Number(opt('--wasm-threads', String(os.availableParallelism()))),
  sessionCreateMs: Object.fromEntries(fusers.map((f) => [f.name, f.createMs])),
  rows,
  date: new Date().toISOString(),
};
mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
console.log(`wrote ${path.relative(REPO, outFile)}`);
await vite.close();
