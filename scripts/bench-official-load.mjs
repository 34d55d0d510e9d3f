#!/usr/bin/env node
/**
 * Memory benchmark of loading an official C2C checkpoint folder at the released dims (Qwen3-0.6B ← Qwen2.5-0.5B:
 * 28 projector_{i}.pt files of bf16, ≈956 MB), the way the engine's Node host loads a fuser (loadFuserSource).
 * Writes a seeded random folder with the PyTorch-free writer (test/checkpoints/official-writer.ts) into
 * bench/out/ (git-ignored) once, then measures three loads, each in a fresh `node --expose-gc` process:
 *   directory   — the folder read from disk (directoryFileReader);
 *   http-cold   — fetched from a local HTTP server on 127.0.0.1, stored in an empty file cache;
 *   http-cached — the same URL again: every file from the cache (the server counts zero requests).
 * Per load (scripts/memory-probe.mjs): peak extra RSS (Linux VmHWM after resetting it through
 * /proc/self/clear_refs) and peak extra ArrayBuffer/external bytes (sampled at every progress callback), both over
 * the post-GC baseline, divided by (file bytes + resulting f32 weight bytes): `officialLoadPeakOverFile`. Writes
 * bench/official-load.json, with the machine it ran on.
 *
 * Flags: --out FILE (default bench/official-load.json), --keep (keep the generated folder and cache).
 */
import { createServer as createHttpServer } from 'node:http';
import { createReadStream, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import path from 'node:path';
import { float32Bytes, startPeakProbe } from './memory-probe.mjs';

const REPO = path.resolve(import.meta.dirname, '..');
const OUT_DIR = path.join(REPO, 'bench', 'out');
const FOLDER = path.join(OUT_DIR, 'official-qwen3-0.6b+qwen2.5-0.5b');
const CACHE = path.join(OUT_DIR, 'official-load-cache');
const args = process.argv.slice(2);
const outFile = args.includes('--out') ? args[args.indexOf('--out') + 1] : path.join(REPO, 'bench', 'official-load.json');

async function vite() {
  const { createServer } = await import('vite');
  const server = await createServer({
    root: REPO, configFile: false, logLevel: 'error', appType: 'custom', server: { middlewareMode: true, hmr: false, ws: false },
  });
  return { load: (p) => server.ssrLoadModule(p), close: () => server.close() };
}

/** The released pair's dims (src/presets.ts): 28 receiver layers (8 × 128), 24 sharer layers (2 × 64), 1024 wide. */
function releasedConfig(presets) {
  const p = presets.findPreset('qwen3-0.6b+qwen2.5-0.5b');
  const r = p.receiver.arch;
  const s = p.sharer.arch;
  const receiver = { numLayers: r.numLayers, kvHeads: r.kvHeads, headDim: r.headDim };
  const sharer = { numLayers: s.numLayers, kvHeads: s.kvHeads, headDim: s.headDim };
  return { receiver, sharer, hiddenDim: p.fuserHidden, intermediateDim: p.fuserIntermediate, numMlpLayers: p.fuserMlpLayers };
}

async function generate() {
  if (existsSync(path.join(FOLDER, 'final', 'projector_27.pt'))) return;
  const v = await vite();
  const presets = await v.load('/src/presets.ts');
  const { randomFuserWeights } = await v.load('/src/fuser/random-weights.ts');
  const { terminalLayerMap } = await v.load('/src/fuser/layer-map.ts');
  const writer = await v.load('/test/checkpoints/official-writer.ts');
  const dims = releasedConfig(presets);
  const layerMap = terminalLayerMap(dims.receiver.numLayers, dims.sharer.numLayers);
  const cfg = { ...dims, rmsNormEps: 1e-6, scalarTemperature: 1, dtype: 'bfloat16', layerMap };
  // One projector at a time: a receiver-layer-sized random fuser per file.
  const layerOf = (i) => randomFuserWeights(1000 + i, { ...dims, receiver: { ...dims.receiver, numLayers: 1 }, layerMap: [0] }).layers[0];
  const t0 = performance.now();
  rmSync(FOLDER, { recursive: true, force: true });
  const names = { dtype: 'bfloat16', baseModel: 'Qwen/Qwen3-0.6B', teacherModel: 'Qwen/Qwen2.5-0.5B-Instruct' };
  const bytes = writer.writeOfficialFolder(FOLDER, writer.officialFolderEntries(cfg, layerOf, names));
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`[bench] wrote ${(bytes / 1e6).toFixed(1)} MB to ${path.relative(REPO, FOLDER)} in ${seconds} s`);
  await v.close();
}

/** Child: one load, measured. Prints one JSON line. */
async function measure(scenario, url) {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  const v = await vite();
  const { loadFuserSource } = await v.load('/src/fuser-source/index.ts');
  const { nodeFuserReader } = await v.load('/src/fuser-source/node.ts');
  const { nodeFileCache } = await v.load('/src/fuser/format/node-cache.ts');
  gc();
  gc();
  const probe = startPeakProbe(); // sampled at every progress callback
  const { base } = probe;
  const t0 = performance.now();
  const location = url ?? FOLDER;
  const reader = nodeFuserReader(location, { cache: url ? nodeFileCache(CACHE) : undefined, onProgress: probe.sample });
  const loaded = await loadFuserSource(reader, { url: location });
  const ms = performance.now() - t0;
  const peak = probe.stop();
  const peakRss = peak.peakExtraRssBytes;
  const peakBuffers = Math.max(0, peak.peakExtraArrayBuffersBytes, peak.peakExtraExternalBytes);
  const weightBytes = float32Bytes(loaded.weights.layers);
  gc();
  const retained = process.memoryUsage().arrayBuffers - base.arrayBuffers;
  const fileBytes = loaded.files.reduce((n, f) => n + f.bytes, 0);
  const denom = fileBytes + weightBytes;
  console.log(JSON.stringify({
    scenario,
    format: loaded.format,
    files: loaded.files.length,
    cachedFiles: loaded.files.filter((f) => f.cached).length,
    fileBytes,
    weightBytes,
    loadMs: Math.round(ms),
    peakExtraRssBytes: peakRss,
    peakExtraArrayBufferBytes: peakBuffers,
    retainedArrayBufferBytes: retained,
    officialLoadPeakOverFile: Number((Math.max(peakRss, peakBuffers) / denom).toFixed(3)),
    peakRssOverFile: Number((peakRss / denom).toFixed(3)),
    peakArrayBuffersOverFile: Number((peakBuffers / denom).toFixed(3)),
  }));
  await v.close();
}

function runChild(scenario, url) {
  return new Promise((resolve, reject) => {
    const argv = ['--expose-gc', import.meta.filename, '--measure', scenario, ...(url ? ['--url', url] : [])];
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop();
      if (code !== 0) reject(new Error(`${scenario} exited with ${code}: ${out}`));
      else resolve(JSON.parse(line));
    });
  });
}

/** Static file server over FOLDER on 127.0.0.1, counting requests. */
function serve() {
  let requests = 0;
  const server = createHttpServer((req, res) => {
    requests++;
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/fuser\//, '');
    const file = path.join(FOLDER, rel);
    if (!file.startsWith(FOLDER + path.sep) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': statSync(file).size, 'content-type': 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, requests: () => requests,
      url: `http://127.0.0.1:${server.address().port}/fuser/` }));
  });
}

if (args[0] === '--measure') {
  await measure(args[1], args.includes('--url') ? args[args.indexOf('--url') + 1] : undefined);
} else {
  mkdirSync(OUT_DIR, { recursive: true });
  await generate();
  rmSync(CACHE, { recursive: true, force: true });
  const results = [];
  results.push(await runChild('directory'));
  const http = await serve();
  const cold = await runChild('http-cold', http.url);
  cold.requests = http.requests();
  results.push(cold);
  const before = http.requests();
  const cached = await runChild('http-cached', http.url);
  cached.requests = http.requests() - before;
  results.push(cached);
  http.server.close();
  for (const r of results) {
    const requests = r.requests !== undefined ? `, ${r.requests} requests` : '';
    console.log(`[bench] ${r.scenario}: peak/(file+weights) = ${r.officialLoadPeakOverFile} (RSS ${r.peakRssOverFile}, `
      + `ArrayBuffers ${r.peakArrayBuffersOverFile}), ${r.files} files, ${r.loadMs} ms${requests}`);
  }
  const json = {
    bench: 'official checkpoint load memory (scripts/bench-official-load.mjs)',
    pair: 'qwen3-0.6b+qwen2.5-0.5b dims, seeded random bf16 weights, upstream layout',
    node: process.version,
    date: new Date().toISOString().slice(0, 10),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, totalMemGiB: Math.round(totalmem() / 2 ** 27) / 8 },
    memory: { officialLoadPeakOverFile: Math.max(...results.map((r) => r.officialLoadPeakOverFile)) },
    results,
  };
  writeFileSync(outFile, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`[bench] wrote ${path.relative(REPO, outFile)}`);
  if (!args.includes('--keep')) rmSync(CACHE, { recursive: true, force: true });
}
