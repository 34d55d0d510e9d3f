#!/usr/bin/env node
/**
 * One measurement of `npm run bench:scale` (scripts/bench-scale.mjs) in a fresh Node process, so peak memory
 * is this part's alone. Prints one JSON line (the last line of stdout). Parts:
 *   model   — ModelHost.loadModel of the receiver or sharer as a Hub id through the local mirror (cold cache);
 *   fuser   — the official checkpoint by URL (loadFuserSource: reader, unpickler, bf16 → f32), then the ONNX
 *             CPU fuser compiled from it (createOnnxFuser), each with its own time and peak memory;
 *   run     — the Node engine on the preset path: load, one warm-up per mode, then `reps` rounds of
 *             receiver / C2C / text relay at the given prompt, answer and hint lengths, timings per stage.
 * Peak memory: scripts/memory-probe.mjs over the post-GC baseline, ArrayBuffer and external bytes sampled
 * every 50 ms.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runnerImport } from 'vite';
import { float32Bytes, startPeakProbe } from './memory-probe.mjs';

const REPO = path.resolve(import.meta.dirname, '..');
const { values: a } = parseArgs({
  options: {
    part: { type: 'string' }, role: { type: 'string' }, hub: { type: 'string' }, pair: { type: 'string' }, dtype: { type: 'string' },
    'sharer-layers': { type: 'string' }, prompt: { type: 'string' }, answer: { type: 'string' }, hint: { type: 'string' },
    reps: { type: 'string' }, 'cache-dir': { type: 'string' },
  },
});
const RUNNER = { root: REPO, configFile: false, logLevel: 'error', server: { watch: null } };
const load = async (p) => (await runnerImport(path.join(REPO, p), RUNNER)).module;
const { env } = await import('@huggingface/transformers');
env.cacheDir = a['cache-dir'];
const presets = await load('src/presets.ts');
const preset = presets.findPreset(a.pair);
const sharerNumLayers = Number(a['sharer-layers']);

const gc = () => globalThis.gc?.();
/** Runs `fn` under a fresh memory probe (50 ms sampling): its value, wall time and peak memory. */
const timed = async (fn) => {
  gc();
  const probe = startPeakProbe({ intervalMs: 50 });
  const t = performance.now();
  const value = await fn();
  const ms = performance.now() - t;
  return { value, ms: +ms.toFixed(1), memory: probe.stop() };
};

const source = (role) => ({ id: preset[role].id, dtype: a.dtype, chatTemplateOptions: { ...preset.chatTemplateOptions } });
const hostInit = { device: 'cpu', allowRemoteModels: true, remoteHost: a.hub, shareDevice: false, topology: 'node', cache: true };

async function modelPart() {
  const { ModelHost } = await load('src/hosts/model-host.ts');
  const { nodePlatform } = await load('src/hosts/node-platform.ts');
  const host = new ModelHost(nodePlatform());
  await host.init(hostInit);
  const r = await timed(() => host.loadModel(a.role, source(a.role)));
  const out = {
    part: 'model', role: a.role, id: preset[a.role].id, dtype: a.dtype, kvDType: r.value.kvDType, loadMs: r.ms, memory: r.memory,
  };
  await host.dispose();
  return out;
}

async function fuserPart() {
  const { loadFuserSource } = await load('src/fuser-source/index.ts');
  const { nodeFuserReader } = await load('src/fuser-source/node.ts');
  const { createOnnxFuser } = await load('src/fuser/onnx/index.ts');
  const ort = await import('onnxruntime-node');
  const url = presets.presetFuserUrl(preset, a.hub.replace(/\/+$/, ''));
  const checkpoint = await timed(() => loadFuserSource(nodeFuserReader(url), { url, format: 'official', sharerNumLayers }));
  const { weights, files } = checkpoint.value;
  const fileBytes = files.reduce((n, f) => n + f.bytes, 0);
  const weightBytes = float32Bytes(weights.layers);
  const compile = await timed(() => createOnnxFuser(weights, { ort }));
  const openPaths = weights.layers.reduce((n, p) => n + (p.key.gateLogit > 0) + (p.value.gateLogit > 0), 0);
  await compile.value.dispose?.();
  return {
    part: 'fuser', url, files: files.length, fileBytes, weightBytes, config: weights.config, openPaths,
    checkpointLoad: {
      ms: checkpoint.ms, memory: checkpoint.memory,
      peakOverFile: +(checkpoint.memory.peakExtraRssBytes / (fileBytes + weightBytes)).toFixed(3),
    },
    onnxCompile: { ms: compile.ms, memory: compile.memory },
  };
}

async function runPart() {
  const node = await load('src/node.ts');
  const base = presets.presetEngineOptions(preset, { remoteHost: a.hub, cache: true, device: 'cpu', prefixReuse: false });
  const opts = { ...base, receiver: source('receiver'), sharer: source('sharer'), fuser: { ...base.fuser, sharerNumLayers } };
  const engine = await timed(() => node.createNodeC2CEngine(opts));
  const e = engine.value;
  const messages = [{ role: 'user', content: a.prompt }];
  const gen = (mode, answer = Number(a.answer)) => e.generate(messages, { mode, maxNewTokens: answer, relayMaxTokens: Number(a.hint) });
  for (const mode of ['receiver', 'c2c', 'text-relay']) await gen(mode, 2); // warm-up: first-run allocations and kernels
  const rounds = [];
  gc();
  const probe = startPeakProbe({ intervalMs: 50 });
  for (let rep = 0; rep < Number(a.reps); rep++) {
    // Rotate the order so drift on a shared machine hits every mode alike.
    const modes = ['receiver', 'c2c', 'text-relay'];
    const order = [...modes.slice(rep % 3), ...modes.slice(0, rep % 3)];
    const round = {};
    for (const mode of order) {
      const r = await gen(mode);
      const { device, ...timing } = r.timing;
      round[mode] = { timing, promptTokens: r.promptIds.length, answerTokens: r.tokenIds.length, hintTokens: r.hint?.tokenIds.length };
    }
    rounds.push(round);
  }
  const during = probe.stop();
  const device = e.device;
  await e.dispose();
  return { part: 'run', dtype: a.dtype, device, loadMs: engine.ms, loadMemory: engine.memory, generationMemory: during, rounds };
}

const parts = { model: modelPart, fuser: fuserPart, run: runPart };
const result = await parts[a.part]();
console.log(JSON.stringify(result));
process.exit(0);
