#!/usr/bin/env node
/**
 * `npm run bench:prefix`: time to first token per chat turn (1..8) with exact prefix reuse and without it
 * (prefill and fuse the whole history every call), side by side in one run on the Node engine (onnxruntime-node
 * CPU), for the C2C and receiver modes. Each turn's answers must be token-identical between the two engines
 * (the run fails otherwise). Writes bench/prefix-reuse-<device>.json.
 *
 * Flags (node:util parseArgs): --pair DIR (a folder with receiver/, sharer/, fuser/; default models/c2c-tiny),
 * --turns N (8), --reps N (3: median per turn), --out FILE.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runnerImport } from 'vite';

const REPO = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: { pair: { type: 'string' }, turns: { type: 'string', default: '8' }, reps: { type: 'string', default: '3' },
    out: { type: 'string' } },
});
const turns = Number(values.turns);
const reps = Number(values.reps);
const dir = path.resolve(values.pair ?? path.join(REPO, 'models/c2c-tiny'));
const { module: node } = await runnerImport(path.join(REPO, 'src/node.ts'),
  { root: REPO, configFile: false, logLevel: 'error', server: { watch: null } });

const opts = { sharer: { id: 'sharer', localPath: dir }, receiver: { id: 'receiver', localPath: dir }, fuser: path.join(dir, 'fuser') };
const reusing = await node.createNodeC2CEngine(opts);
const fresh = await node.createNodeC2CEngine({ ...opts, prefixReuse: false });
const QUESTIONS = [
  'Question: Which city does Mibrar live in?\nA. Cairo\nB. Dublin\nC. Paris\nD. Oslo\nAnswer with the letter.',
  'Question: What is the job of Shuron?\nA. baker\nB. pilot\nC. teacher\nD. sailor\nAnswer with the letter.',
  'Question: What pet does Dabar have?\nA. rabbit\nB. turtle\nC. horse\nD. cat\nAnswer with the letter.',
];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function runChat(mode) {
  const rows = [];
  const samples = Array.from({ length: turns }, () => ({ reuse: [], full: [], promptTokens: 0, reused: 0 }));
  for (let rep = 0; rep < reps; rep++) {
    await reusing.resetChat(); // every repetition starts a new conversation
    const history = [];
    for (let t = 0; t < turns; t++) {
      history.push({ role: 'user', content: QUESTIONS[t % QUESTIONS.length] });
      // Alternate which engine goes first so drift on a shared machine hits both alike.
      const order = (t + rep) % 2 ? [reusing, fresh] : [fresh, reusing];
      const out = new Map();
      for (const e of order) out.set(e, await e.generate(history, { mode, maxNewTokens: 8 }));
      const a = out.get(reusing), b = out.get(fresh);
      if (JSON.stringify(a.tokenIds) !== JSON.stringify(
        b.tokenIds)) throw new Error(`${mode} turn ${t + 1}: reuse and full re-fusion answers differ`);
      samples[t].reuse.push(a.timing.ttftMs);
      samples[t].full.push(b.timing.ttftMs);
      samples[t].promptTokens = a.promptIds.length;
      samples[t].reused = mode === 'c2c' ? a.reused.fused : a.reused.receiver;
      history.push({ role: 'assistant', content: a.text });
    }
  }
  for (const [t, s] of samples.entries()) {
    const reuse = median(s.reuse), full = median(s.full);
    rows.push({ turn: t + 1, promptTokens: s.promptTokens, reusedTokens: s.reused, ttftMsReuse: +reuse.toFixed(2),
      ttftMsFull: +full.toFixed(2), fullOverReuse: +(full / reuse).toFixed(2) });
  }
  return rows;
}

const results = {};
try {
  for (const mode of ['c2c', 'receiver']) {
    results[mode] = await runChat(mode);
    console.log(`${mode}:`);
    for (const r of results[mode]) {
      console.log(`  turn ${r.turn}: ${r.promptTokens} prompt tokens (${r.reusedTokens} reused) TTFT ${r.ttftMsReuse} ms with reuse`
        + ` vs ${r.ttftMsFull} ms re-fusing (${r.fullOverReuse}×)`);
    }
  }
} finally {
  await reusing.dispose();
  await fresh.dispose();
}
const device = `node-cpu-${os.cpus().length}core`;
const report = {
  benchmark: 'prefix-reuse TTFT per turn (same answers checked token by token)',
  device: { runtime: `onnxruntime-node (CPU) on Node ${process.version}`, cpu: os.cpus()[0]?.model, cores: os.cpus().length },
  pair: path.relative(REPO, dir) || dir,
  date: new Date().toISOString(),
  reps,
  results,
};
const out = path.resolve(REPO, values.out ?? `bench/prefix-reuse-${device}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
console.log(`wrote ${path.relative(REPO, out)}`);
