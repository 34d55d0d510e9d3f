/**
 * Vitest global setup: makes sure dist-lib/ (the library build the bin and the package run) matches the sources.
 * Rebuilds with `npm run build:lib` when a build output is missing or older than any input, once per vitest run
 * and before any test file starts (so no test reads dist-lib while it is rewritten). A failed build does not stop
 * the run: the tests that need dist-lib fail with its log (see requireLibBuild), the others run as usual.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

const REPO = path.resolve(import.meta.dirname, '../..');
const INPUTS = ['src', 'workers', 'vite.config.ts', 'scripts/vite-lib-worker-url.mjs',
  'tsconfig.json', 'tsconfig.build.json', 'package.json'];
const OUTPUTS = ['dist-lib/index.js', 'dist-lib/node.js', 'dist-lib/cli.js', 'dist-lib/types/index.d.ts', 'dist-lib/types/node.d.ts'];

export interface LibBuildState {
  ok: boolean;
  rebuilt: boolean;
  log: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    libBuild: LibBuildState;
  }
}

function newestMtime(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(p).map((n) => newestMtime(path.join(p, n))));
}

/** Why dist-lib must be rebuilt, or null when every output is newer than every input. */
export function staleReason(): string | null {
  const missing = OUTPUTS.find((f) => !existsSync(path.join(REPO, f)));
  if (missing) return `${missing} is missing`;
  const built = Math.min(...OUTPUTS.map((f) => statSync(path.join(REPO, f)).mtimeMs));
  const changed = INPUTS.find((f) => existsSync(path.join(REPO, f)) && newestMtime(path.join(REPO, f)) > built);
  return changed ? `${changed} changed since the last build` : null;
}

export default function setup(project: TestProject): void {
  const reason = staleReason();
  if (!reason) {
    project.provide('libBuild', { ok: true, rebuilt: false, log: '' });
    return;
  }
  const t0 = performance.now();
  const r = spawnSync('npm', ['run', 'build:lib'], { cwd: REPO, encoding: 'utf8' });
  const log = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`;
  const ok = r.status === 0;
  console.log(`[lib-build] ${reason}: npm run build:lib ${ok ? 'done' : 'FAILED'} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  project.provide('libBuild', { ok, rebuilt: true, log });
}
