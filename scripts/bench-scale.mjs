#!/usr/bin/env node
/**
 * `npm run bench:scale`: the paper's pair (Qwen3-0.6B ← Qwen2.5-0.5B-Instruct, released fuser layout and dims)
 * on random-weight stand-ins (docs/standins.md), run the way a Hub user runs it: every file through a local
 * Hub mirror (src/standins/hub-mirror.ts, `EngineOptions.remoteHost`), the official checkpoint loaded
 * directly. Generates the stand-ins it needs into the git-ignored cache when absent. Per backend (Node
 * onnxruntime CPU; Chromium workers on wasm; WebGPU only where the adapter is a real GPU) it measures load
 * time and peak memory of each model and of the fuser, then receiver prefill, sharer prefill, fusion and
 * per-token decode at the paper's Table 3 lengths, and the ratios beside the paper's. Writes
 * bench/scale-<device>.json (scripts/bench-scale-report.mjs computes the ratios and FLOP counts).
 *
 * Flags: --layers N (default: full depth), --prompt-tokens N (170), --answer-tokens N (11), --hint-tokens N (80),
 * --reps N (3), --backends node,chromium, --node-dtype (fp16), --browser-dtype (q8), --pair (qwen3-0.6b+qwen2.5-0.5b, or
 * qwen3-0.6b+llama3.2-1b: the cross-tokenizer sharer through the aligner), --out FILE.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runnerImport } from 'vite';
import { buildReport, deviceSlug, markdownTable } from './bench-scale-report.mjs';

const REPO = path.resolve(import.meta.dirname, '..');
const loadAtStart = os.loadavg();
const { values: v } = parseArgs({
  options: {
    layers: { type: 'string' }, 'prompt-tokens': { type: 'string', default: '170' }, 'answer-tokens': { type: 'string', default: '11' },
    'hint-tokens': { type: 'string', default: '80' }, reps: { type: 'string', default: '3' },
    backends: { type: 'string', default: 'node,chromium' },
    'node-dtype': { type: 'string', default: 'fp16' }, 'browser-dtype': { type: 'string', default: 'q8' }, out: { type: 'string' },
    pair: { type: 'string', default: 'qwen3-0.6b+qwen2.5-0.5b' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (v.help) {
  console.log('usage: npm run bench:scale -- [--layers N] [--prompt-tokens N] [--answer-tokens N] [--hint-tokens N] [--reps N]\n'
    + '  [--backends node,chromium] [--node-dtype fp32|fp16|q8] [--browser-dtype fp32|fp16|q8] [--pair P] [--out FILE]');
  process.exit(0);
}
const int = (name) => {
  if (!/^\d+$/.test(v[name] ?? '') || Number(v[name]) < 1) {
    console.error(`bench:scale: --${name} must be a positive integer, got ${JSON.stringify(v[name])}`);
    process.exit(2);
  }
  return Number(v[name]);
};
const PAIR = v.pair;
const layers = v.layers === undefined ? undefined : int('layers');
const [promptTokens, answer, hint, reps] = ['prompt-tokens', 'answer-tokens', 'hint-tokens', 'reps'].map(int);
const backends = v.backends.split(',').filter(Boolean);
const RUNNER = { root: REPO, configFile: false, logLevel: 'error', server: { watch: null } };
const imp = async (p) => (await runnerImport(path.join(REPO, p), RUNNER)).module;
const log = (s) => console.log(`[bench:scale] ${s}`);

const { ensureStandins } = await imp('src/standins/ensure.ts');
const { serveHubMirror } = await imp('src/standins/hub-mirror.ts');
const presets = await imp('src/presets.ts');
const preset = presets.findPreset(PAIR);
if (!preset || !['qwen3-0.6b+qwen2.5-0.5b', 'qwen3-0.6b+llama3.2-1b'].includes(PAIR)) {
  console.error('bench:scale: --pair must be qwen3-0.6b+qwen2.5-0.5b or qwen3-0.6b+llama3.2-1b (the stand-in pairs), '
    + `got ${JSON.stringify(PAIR)}`);
  process.exit(2);
}
const asked = [backends.includes('node') && v['node-dtype'], backends.includes('chromium') && v['browser-dtype']];
const flavours = [...new Set(asked.filter(Boolean))];
log(`stand-ins (${layers ? `${layers} layers` : 'full depth'}, ${flavours.join(' + ')})`);
const standins = await ensureStandins({ layers, pairs: [PAIR], flavours, conversions: [], log: (s) => log(s) });
const sharerNumLayers = layers ?? preset.sharer.arch.numLayers;
const hub = await serveHubMirror(standins.root);
const prompt = await promptOfLength(promptTokens);
log(`prompt: ${prompt.tokens} receiver tokens; answer ${answer}, hint ${hint}, ${reps} rounds; mirror ${hub.url}`);

const cacheDir = path.join(REPO, 'bench/out/scale-cache');
/** One part in a fresh Node process (async: the mirror in this process must keep serving). */
const child = (args) => new Promise((resolve, reject) => {
  const p = spawn(process.execPath, ['--expose-gc', path.join(REPO, 'scripts/bench-scale-node.mjs'), ...args,
    '--hub', hub.url, '--pair', PAIR, '--sharer-layers', String(sharerNumLayers), '--cache-dir', cacheDir],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.on('error', reject);
  p.on('close', (status) => {
    const last = stdout.trim().split('\n').at(-1);
    const what = `bench-scale-node ${args.slice(0, 4).join(' ')}`;
    if (status !== 0 || !last?.startsWith('{')) reject(new Error(`${what} failed (status ${status}): ${stdout.slice(-2000)}`));
    else resolve(JSON.parse(last));
  });
});

const results = { node: null, chromium: null };
try {
  if (backends.includes('node')) {
    const dtype = v['node-dtype'];
    log('node: fuser (official checkpoint by URL, then the ONNX CPU fuser)');
    const fuser = await child(['--part', 'fuser']);
    const models = {};
    for (const role of ['receiver', 'sharer']) {
      rmSync(cacheDir, { recursive: true, force: true }); // a cold load: every byte through the mirror
      log(`node: ${role} ${dtype}`);
      models[role] = await child(['--part', 'model', '--role', role, '--dtype', dtype]);
    }
    log('node: engine rounds');
    const run = await child(['--part', 'run', '--dtype', dtype, '--prompt', prompt.text, '--answer', String(answer),
      '--hint', String(hint), '--reps', String(reps)]);
    results.node = { fuser, models, run };
  }
  if (backends.includes('chromium')) {
    const dtype = v['browser-dtype'];
    const { runChromium } = await import('./bench-scale-browser.mjs');
    const base = presets.presetEngineOptions(preset, { remoteHost: hub.url, cache: false, device: 'wasm', prefixReuse: false });
    const source = (role) => ({ ...base[role], dtype });
    const opts = { ...base, receiver: source('receiver'), sharer: source('sharer'), fuser: { ...base.fuser, sharerNumLayers } };
    log(`chromium: workers on wasm, ${dtype}`);
    try {
      results.chromium = await runChromium({ opts, prompt: prompt.text, answer, hint, reps });
    } catch (e) {
      // Recorded, not hidden: the JSON says what failed and why (e.g. a wasm heap past 4 GiB).
      results.chromium = { part: 'chromium', dtype, failed: `${e?.name ?? 'Error'}: ${String(e?.message ?? e).slice(0, 2000)}` };
      log(`chromium failed: ${results.chromium.failed}`);
    }
  }
} finally {
  await hub.close();
  rmSync(cacheDir, { recursive: true, force: true });
}

const { pathFlopsPerToken } = await imp('src/fuser/shapes.ts');
const report = buildReport({ preset, standins, layers, prompt, answer, hint, reps, results, flags: v, pathFlopsPerToken, loadAtStart });
// The paper's pair is bench/scale-<device>.json; the Llama pair adds its sharer's name.
const pairTag = PAIR === 'qwen3-0.6b+qwen2.5-0.5b' ? '' : `${PAIR.split('+')[1]}-`;
const out = v.out ?? path.join(REPO, `bench/scale-${pairTag}${deviceSlug()}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(report, null, 1)}\n`);
log(`ratios ${JSON.stringify(report.ratios)}`);
log(`wrote ${path.relative(process.cwd(), out)}`);
console.log(`\n${markdownTable(report, path.relative(REPO, out))}`);

/** A user message whose templated receiver prompt has about `n` tokens (the real Qwen3 tokenizer). */
async function promptOfLength(n) {
  const { AutoTokenizer, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = `${standins.root}/`;
  const tok = await AutoTokenizer.from_pretrained(preset.receiver.id);
  const words = 'Question: a train leaves the station at nine and travels north at sixty miles per hour while a second train'
    + ' leaves the same station one hour later travelling south at eighty miles per hour; which statement about the two'
    + ' trains after three hours is correct, given the options below and the facts of the question';
  const pool = words.split(' ');
  const render = (k) => {
    const body = Array.from({ length: k }, (_, i) => pool[i % pool.length]).join(' ');
    const text = `${body}\nA. they are 300 miles apart\nB. they are 340 miles apart\nC. they are 420 miles apart\nD. they meet\nAnswer:`;
    const templated = { tokenize: true, add_generation_prompt: true, enable_thinking: false, return_tensor: false };
    const ids = tok.apply_chat_template([{ role: 'user', content: text }], templated);
    return { text, tokens: ids.input_ids.length };
  };
  let k = 1;
  while (render(k).tokens < n) k++;
  return render(k);
}
