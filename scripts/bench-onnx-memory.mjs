#!/usr/bin/env node
/**
 * Memory of the ONNX CPU fuser at the released dims (Qwen3-0.6B ← Qwen2.5-0.5B: 28 receiver layers, hidden =
 * intermediate = 1024, num_layers 3; ≈ 475 M parameters, 1.9 GB f32) with `randomFuserWeights`, on onnxruntime-node.
 * One implementation per process, so the kernel's peak RSS (VmHWM) belongs to it:
 *   --impl after   this tree's fuser (layer-group sessions, `--max-session-mib`, default its own default)
 *   --impl before  the fuser of commit `--commit` (default 87887f9: one protobuf, one session), read with git show
 * Phases: build weights, compile (createOnnxFuser), drop the JS weights (gc), fuse `--tokens` tokens (f32 KV, and
 * f16 KV for 'after'). After each phase: peak RSS so far (VmHWM), RSS, V8 ArrayBuffers and external memory; a
 * watchdog thread samples RSS every 100 ms (also while the main thread is busy) and kills the run above
 * `--rss-limit-gib` (default 16). Results are merged into `--out` (default bench/onnx-fuser-memory.json) under the impl.
 * Run: node --expose-gc scripts/bench-onnx-memory.mjs --impl after
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createServer } from 'vite';

const REPO = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const impl = opt('--impl', 'after');
const commit = opt('--commit', '87887f9');
const tokens = Number(opt('--tokens', '16'));
const maxSessionMiB = opt('--max-session-mib', undefined);
const outFile = path.resolve(REPO, opt('--out', 'bench/onnx-fuser-memory.json'));
const rssLimit = Number(opt('--rss-limit-gib', '16')) * 2 ** 30;
if (!['after', 'before'].includes(impl)) throw new Error(`--impl must be 'after' or 'before', got ${impl}`);
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc (the weights are dropped and collected between phases)');

const GiB = 2 ** 30;
const status = () => Object.fromEntries(readFileSync('/proc/self/status', 'utf8').split('\n').filter(
  (l) => /^Vm(HWM|RSS):/.test(l)).map((l) => [l.split(':')[0], Number(l.split(/\s+/)[1]) * 1024]));

/** Merges one run's record into the results file (also called by the watchdog thread when it kills the run). */
const MERGE = `function merge(file, impl, run) {
  const fs = require('node:fs');
  const fresh = { description: 'ONNX CPU fuser memory at the released dims; scripts/bench-onnx-memory.mjs', runs: {} };
  const all = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : fresh;
  all.runs[impl] = run;
  fs.writeFileSync(file, JSON.stringify(all, null, 1) + '\\n');
}`;
const merge = new Function('require', `${MERGE}; return merge;`)((await import('node:module')).createRequire(import.meta.url));

// Watchdog: RSS sampled from another thread, so a runaway synchronous phase is still caught; above the limit it
// records the run as killed (with the phases completed so far) and kills the process.
const watchdog = new Worker(
  `const { parentPort, workerData } = require('node:worker_threads');
   ${MERGE}
   let max = 0;
   const phases = [];
   parentPort.on('message', (p) => phases.push(p));
   setInterval(() => {
     const rss = process.memoryUsage.rss();
     max = Math.max(max, rss);
     if (rss > workerData.limit) {
       const gib = (x) => +(x / 2 ** 30).toFixed(3);
       merge(workerData.outFile, workerData.impl, { ...workerData.meta, killed: true, killedAtRssGiB: gib(rss), rssLimitGiB: gib(workerData.limit),
         note: 'killed by the watchdog: the next phase did not finish under the limit', phases, measuredAt: new Date().toISOString() });
       process.kill(process.pid, 'SIGKILL');
     }
     parentPort.postMessage(max);
   }, 100);`,
  { eval: true, workerData: { limit: rssLimit, outFile, impl, meta: { impl, commit: impl === 'before' ? commit : null, tokens } } },
);
let sampledMax = 0;
watchdog.on('message', (m) => (sampledMax = m));
watchdog.unref();

const phases = [];
let t = performance.now();
function phase(name, extra = {}) {
  const m = process.memoryUsage();
  const s = status();
  const now = performance.now();
  const rec = { phase: name, ms: Math.round(now - t), peakRssGiB: +(s.VmHWM / GiB).toFixed(3), rssGiB: +(s.VmRSS / GiB).toFixed(3),
    arrayBuffersGiB: +(m.arrayBuffers / GiB).toFixed(3), externalGiB: +(m.external / GiB).toFixed(3),
    heapUsedGiB: +(m.heapUsed / GiB).toFixed(3), ...extra };
  phases.push(rec);
  watchdog.postMessage(rec);
  console.log(`[bench-onnx-memory] ${impl} ${JSON.stringify(rec)}`);
  t = performance.now();
}

const vite = await createServer({ root: REPO, configFile: false, logLevel: 'error', appType: 'custom',
  server: { middlewareMode: true, hmr: false, ws: false } });
const load = (p) => vite.ssrLoadModule(p);

/** The old fuser's three files from git, imports pointed at this tree's modules (their APIs are the same). */
function beforeModule() {
  const dir = path.join(REPO, 'test-results', 'onnx-before');
  mkdirSync(dir, { recursive: true });
  for (const f of ['index.ts', 'graph.ts', 'protobuf.ts']) {
    const src = execFileSync('git', ['show', `${commit}:src/fuser/onnx/${f}`], { cwd: REPO, encoding: 'utf8' });
    writeFileSync(path.join(dir, f), src.replaceAll("'../../", "'/src/").replaceAll("from '../", "from '/src/fuser/"));
  }
  return '/test-results/onnx-before/index.ts';
}

const { randomFuserWeights, seededRandom } = await load('/src/fuser/random-weights.ts');
const { createOnnxFuser } = await load(impl === 'after' ? '/src/fuser/onnx/index.ts' : beforeModule());
const ort = await import('onnxruntime-node');
phase('start');

const dims = {
  receiver: { numLayers: 28, kvHeads: 8, headDim: 128 },
  sharer: { numLayers: 24, kvHeads: 2, headDim: 64 },
  hiddenDim: 1024, intermediateDim: 1024, numMlpLayers: 3,
};
let weights = randomFuserWeights(2026, dims);
let weightBytes = 0;
for (const l of weights.layers) for (const p of ['key', 'value']) {
  const q = l[p];
  for (const lin of [q.in, q.scalarHead, q.projOut, ...[...q.mlp1, ...q.scalarMlp2, ...q.projMlp2].flatMap(
    (b) => [b.w1, b.w2])]) weightBytes += 4 * (lin.weight.length + (lin.bias?.length ?? 0));
}
phase('weights', { weightGiB: +(weightBytes / GiB).toFixed(3) });

let fuser;
try {
  fuser = await createOnnxFuser(weights, {
    ort,
    warmup: false,
    sessionOptions: { intraOpNumThreads: 2 },
    ...(maxSessionMiB ? { maxSessionWeightBytes: Number(maxSessionMiB) * 2 ** 20 } : {}),
  });
  phase('compile', { sessions: fuser.sessionLayers?.length ?? 1 });
} catch (e) {
  phase('compile', { error: String(e.message ?? e).slice(0, 300) });
}

if (fuser) {
  weights = null;
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 200));
  phase('weights dropped (gc)');
  const rand = seededRandom(1);
  const cache = (d, f16) => Array.from({ length: d.numLayers }, () => {
    const t = () => {
      const data = Float32Array.from({ length: d.kvHeads * tokens * d.headDim }, () => rand() * 2 - 1);
      return f16 ? { dtype: 'float16', data: Uint16Array.from(data, () => 0x3c00), heads: d.kvHeads, seq: tokens,
        headDim: d.headDim } : { dtype: 'float32', data, heads: d.kvHeads, seq: tokens, headDim: d.headDim };
    };
    return { key: t(), value: t() };
  });
  await fuser.fuse(cache(dims.receiver, false), cache(dims.sharer, false));
  phase(`fuse ${tokens} tokens, f32 KV`);
  if (impl === 'after') {
    await fuser.fuse(cache(dims.receiver, true), cache(dims.sharer, true));
    phase(`fuse ${tokens} tokens, f16 KV`);
  }
  fuser.dispose();
}
await vite.close();

const result = {
  impl,
  source: impl === 'before' ? `git ${commit}: src/fuser/onnx (one protobuf, one InferenceSession)` : 'this tree: src/fuser/onnx (layer-group sessions)',
  maxSessionMiB: impl === 'after' ? Number(maxSessionMiB ?? 256) : null,
  dims,
  tokens,
  onnxruntimeNode: JSON.parse(readFileSync(path.join(REPO, 'node_modules/onnxruntime-node/package.json'), 'utf8')).version,
  machine: { cores: (await import('node:os')).cpus().length, totalMemGiB: +((await import('node:os')).totalmem() / GiB).toFixed(1),
    node: process.version },
  peakRssGiB: +(status().VmHWM / GiB).toFixed(3),
  sampledPeakRssGiB: +(sampledMax / GiB).toFixed(3),
  phases,
  measuredAt: new Date().toISOString(),
};
merge(outFile, impl, result);
console.log(`[bench-onnx-memory] wrote ${path.relative(REPO, outFile)} (${impl}: peak RSS ${result.peakRssGiB} GiB)`);
process.exit(0);
