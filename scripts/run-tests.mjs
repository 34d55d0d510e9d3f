#!/usr/bin/env node
/**
 * `npm test`: every test of the project. Ensures system Chromium (browser + dawn.node SwiftShader tests) and
 * Mesa lavapipe (dawn.node f16 kernel tests; installed from bookworm-backports as root, else those suites skip
 * with the reason) and Debian's python3-torch (the PyTorch golden/fidelity checks; likewise), type-checks, runs
 * vitest (Node unit, kernel and browser suites), then prints one closing line
 * "Tests: N passed, N failed, N skipped" read from vitest's JSON report. Exits non-zero on any failure.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { ensureChromium } from './ensure-chromium.mjs';
import { ensureMesa } from './ensure-mesa.mjs';
import { ensureTorch } from './ensure-torch.mjs';

const run = (cmd, args, extraEnv = {}) =>
  spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...extraEnv } }).status ?? 1;

let chrome;
try {
  chrome = ensureChromium();
  console.log(`[test] Chromium: ${chrome}`);
} catch (e) {
  console.error(`[test] ${e.message}`);
  process.exit(1);
}

const noLavapipe = ensureMesa();
console.log(noLavapipe
  ? `[test] lavapipe unavailable, the f16 kernel suites will skip: ${noLavapipe}` : '[test] lavapipe: ready (f16 kernel suites run)');

const noTorch = ensureTorch();
console.log(noTorch ? `[test] PyTorch unavailable, the golden/fidelity suites will skip: ${noTorch}` : '[test] PyTorch: ready');

if (run('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']) !== 0) {
  console.error('[test] type check failed');
  process.exit(1);
}

mkdirSync('test-results', { recursive: true });
const report = 'test-results/vitest.json';
if (existsSync(report)) rmSync(report);
const extra = process.argv.slice(2);
const status = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra], {
  CHROME_PATH: chrome,
});

let passed = 0, failed = 0, skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests ?? 0;
  // A file that fails to load has no failed tests: count each such file once so the line never hides it.
  const brokenFiles = (r.testResults ?? []).filter((f) => f.status === 'failed' && !(f.assertionResults ?? []).some(
    (a) => a.status === 'failed')).length;
  failed = (r.numFailedTests ?? 0) + brokenFiles;
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
}
console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status === 0 && failed === 0 && passed > 0 ? 0 : 1);
