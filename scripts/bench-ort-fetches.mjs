#!/usr/bin/env node
/**
 * Does onnxruntime-node skip the nodes of outputs that are not fetched? A graph with a large "logits" MatMul
 * (x[n, 1024] · W[1024, 32768]) and a cheap "kv" output (Relu(x)) is run with every output and with only 'kv'
 * fetched (`session.run(feeds, ['kv'])`), interleaved, medians of `--reps` runs. If the times match, requesting
 * only present.* would not avoid a model's logits MatMul: `num_logits_to_keep` is the way (src/models/causal-lm.ts).
 * Writes bench/ort-fetch-pruning.json.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createServer } from 'vite';

const REPO = path.resolve(import.meta.dirname, '..');
const reps = Number(process.argv.includes('--reps') ? process.argv[process.argv.indexOf('--reps') + 1] : 7);
const vite = await createServer({ root: REPO, configFile: false, logLevel: 'error', appType: 'custom',
  server: { middlewareMode: true, hmr: false, ws: false } });
const { encodeModel } = await vite.ssrLoadModule('/src/fuser/onnx/protobuf.ts');
const ort = await import('onnxruntime-node');

const K = 1024, N = 32768, rows = 256;
const model = encodeModel({
  name: 'fetch_pruning',
  nodes: [
    { op: 'MatMul', inputs: ['x', 'W'], outputs: ['logits'], name: 'lm_head' },
    { op: 'Relu', inputs: ['x'], outputs: ['kv'], name: 'kv' },
  ],
  initializers: [{ name: 'W', dims: [K, N], data: new Float32Array(K * N).fill(0.001) }],
  inputs: [{ name: 'x', dims: ['n', K] }],
  outputs: [{ name: 'logits', dims: ['n', N] }, { name: 'kv', dims: ['n', K] }],
});
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
const x = new ort.Tensor('float32', new Float32Array(rows * K).fill(0.5), [rows, K]);
const runs = { all: [], kvOnly: [] };
await session.run({ x });
for (let i = 0; i < reps; i++) {
  for (const [name, fetches] of [['all', undefined], ['kvOnly', ['kv']]]) {
    const t0 = performance.now();
    const out = fetches ? await session.run({ x }, fetches) : await session.run({ x });
    runs[name].push(performance.now() - t0);
    if (name === 'kvOnly' && out.logits) throw new Error('logits came back although not fetched');
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result = {
  description: 'onnxruntime-node: time of a run fetching every output vs only the cheap one (scripts/bench-ort-fetches.mjs)',
  onnxruntimeNode: ort.env?.versions?.node ?? 'see package-lock',
  graph: { logitsMatMul: [rows, K, N], flops: 2 * rows * K * N, cheapOutput: `Relu [${rows}, ${K}]` },
  intraOpNumThreads: 1,
  reps,
  medianMs: { allOutputs: +median(runs.all).toFixed(1), kvOnly: +median(runs.kvOnly).toFixed(1) },
  conclusion: '',
  measuredAt: new Date().toISOString(),
};
result.conclusion = result.medianMs.kvOnly > 0.5 * result.medianMs.allOutputs
  ? 'unfetched outputs are still computed: fetching only present.* does not skip the logits MatMul; use num_logits_to_keep'
  : 'unfetched outputs are skipped';
writeFileSync(path.join(REPO, 'bench/ort-fetch-pruning.json'), `${JSON.stringify(result, null, 1)}\n`);
console.log(JSON.stringify(result.medianMs), result.conclusion);
await vite.close();
process.exit(0);
