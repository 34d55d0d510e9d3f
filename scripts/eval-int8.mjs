#!/usr/bin/env node
/**
 * int8 fuser accuracy on the embedded pair's held-out eval set: runs the Node engine (createNodeC2CEngine,
 * onnxruntime-node + its default CPU fuser, the ONNX graph) twice on the same items, greedy, once with the
 * stored f32 fuser and once with its int8 quantisation (written to a temp folder with serializeFuser(…, { dtype: 'int8' })), and
 * reports C2C accuracy for both, how often the two give the same tokens, and receiver-alone accuracy.
 *
 *   node scripts/eval-int8.mjs [--pair models/c2c-tiny] [--items <pair>/eval_test.jsonl] [--limit N] [--json out.json]
 *
 * Items are JSON lines with `prompt` (the user message) and `answer` (exact expected text), as written by
 * train/evaluate.py. The TypeScript sources are loaded through Vite's SSR loader, so no build is needed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const pairDir = resolve(root, arg('--pair', 'models/c2c-tiny'));
const itemsPath = resolve(root, arg('--items', join(pairDir, 'eval_test.jsonl')));
const limit = Number(arg('--limit', 'Infinity'));
const jsonOut = arg('--json', undefined);

for (const need of [join(pairDir, 'receiver'), join(pairDir, 'sharer'), join(pairDir, 'fuser', 'fuser.json'), itemsPath]) {
  if (!existsSync(need)) {
    console.error(`eval-int8: ${need} is missing (needs a trained pair with its fuser and eval set)`);
    process.exit(2);
  }
}
const items = readFileSync(itemsPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).slice(0, limit);
const goldenPath = join(pairDir, 'golden', 'golden.json');
const maxNewTokens = Number(arg('--max-new-tokens', existsSync(goldenPath)
  ? JSON.parse(readFileSync(goldenPath, 'utf8')).max_new_tokens : 8));

const vite = await createServer({ root, configFile: false, logLevel: 'error', appType: 'custom',
  server: { middlewareMode: true, hmr: false } });
const tmp = mkdtempSync(join(tmpdir(), 'c2c-int8-'));
try {
  const node = await vite.ssrLoadModule('/src/node.ts');
  const f32 = await node.loadFuserFromDirectory(join(pairDir, 'fuser'));
  const { json, files } = node.serializeFuser(f32, { dtype: 'int8', metadata: { source: 'eval-int8: quantised from the f32 fuser' } });
  const int8Dir = join(tmp, 'fuser-int8');
  mkdirSync(int8Dir);
  writeFileSync(join(int8Dir, 'fuser.json'), JSON.stringify(json));
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(int8Dir, name), bytes);

  const engineFor = (fuser) =>
    node.createNodeC2CEngine({ sharer: { id: 'sharer', localPath: pairDir }, receiver: { id: 'receiver', localPath: pairDir }, fuser });
  const run = async (fuserDir, modes) => {
    const engine = await engineFor(fuserDir);
    const out = [];
    try {
      for (const it of items) {
        const row = {};
        for (const mode of modes) {
          const r = await engine.generate([{ role: 'user', content: it.prompt }], { mode, maxNewTokens, sampling: { temperature: 0 } });
          row[mode] = { text: r.text.trim(), ids: r.tokenIds };
        }
        out.push(row);
      }
    } finally {
      await engine.dispose();
    }
    return out;
  };

  const t0 = performance.now();
  const withF32 = await run(join(pairDir, 'fuser'), ['c2c', 'receiver']);
  const withInt8 = await run(int8Dir, ['c2c']);
  const secs = (performance.now() - t0) / 1000;

  const acc = (rows, mode, kind) => {
    const idx = items.map((it, i) => i).filter((i) => !kind || items[i].type === kind);
    const ok = idx.filter((i) => rows[i][mode].text === items[i].answer).length;
    return { correct: ok, n: idx.length, accuracy: idx.length ? ok / idx.length : NaN };
  };
  const same = items.filter((_, i) => JSON.stringify(withF32[i].c2c.ids) === JSON.stringify(withInt8[i].c2c.ids)).length;
  const kinds = [...new Set(items.map((it) => it.type).filter(Boolean))].sort();
  const report = {
    items: items.length,
    itemsFile: itemsPath.startsWith(root) ? itemsPath.slice(root.length + 1) : itemsPath,
    maxNewTokens,
    receiver: acc(withF32, 'receiver'),
    c2cF32: acc(withF32, 'c2c'),
    c2cInt8: acc(withInt8, 'c2c'),
    byType: Object.fromEntries(kinds.map((k) => [k, { receiver: acc(withF32, 'receiver', k), c2cF32: acc(withF32, 'c2c', k),
      c2cInt8: acc(withInt8, 'c2c', k) }])),
    sameOutputTokens: same,
    flipped: {
      rightToWrong: items.filter((it, i) => withF32[i].c2c.text === it.answer && withInt8[i].c2c.text !== it.answer).length,
      wrongToRight: items.filter((it, i) => withF32[i].c2c.text !== it.answer && withInt8[i].c2c.text === it.answer).length,
    },
    fuserFileBytes: { float32: null, int8: Object.values(files).reduce((s, b) => s + b.length, 0) },
    wallSeconds: Math.round(secs),
    rows: items.map((it, i) => ({ id: it.id, answer: it.answer, receiver: withF32[i].receiver.text, c2cF32: withF32[i].c2c.text,
      c2cInt8: withInt8[i].c2c.text })),
  };
  report.fuserFileBytes.float32 = Object.values(node.serializeFuser(f32, { dtype: 'float32' }).files).reduce((s, b) => s + b.length, 0);
  const pct = (a) => `${(100 * a.accuracy).toFixed(1)} % (${a.correct}/${a.n})`;
  console.log(`int8 fuser eval: ${report.items} items from ${report.itemsFile}, greedy, max ${maxNewTokens} new tokens, ${report.wallSeconds} s`);
  console.log(`| | accuracy |\n|---|---|`);
  console.log(`| receiver alone | ${pct(report.receiver)} |`);
  console.log(`| C2C, f32 fuser | ${pct(report.c2cF32)} |`);
  console.log(`| C2C, int8 fuser | ${pct(report.c2cInt8)} |`);
  for (const k of kinds) {
    const t = report.byType[k];
    console.log(`| ${k}: receiver / f32 / int8 | ${pct(t.receiver)} / ${pct(t.c2cF32)} / ${pct(t.c2cInt8)} |`);
  }
  console.log(`same C2C output tokens (f32 vs int8): ${same}/${items.length}; `
    + `right→wrong ${report.flipped.rightToWrong}, wrong→right ${report.flipped.wrongToRight}`);
  if (jsonOut) writeFileSync(resolve(jsonOut), `${JSON.stringify(report, null, 2)}\n`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
  await vite.close();
}
