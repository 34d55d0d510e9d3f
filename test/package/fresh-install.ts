/**
 * `npm pack` the repo (the dist-lib build the global setup made; --ignore-scripts so prepack does not rebuild
 * it under running tests) and `npm install <tarball> --omit=dev` into a fresh project, as a new user would.
 * The npm cache from `npm ci` serves the dependencies (--prefer-offline); the fresh project carries its own
 * .npmrc with onnxruntime-node-install=skip (without it onnxruntime-node's postinstall downloads CUDA from nuget).
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');

export interface PackedFile {
  path: string;
  size: number;
}

export interface FreshInstall {
  tarball: string;
  files: PackedFile[];
  /** The consumer project: test/package/app copied, c2c-web installed under node_modules/. */
  app: string;
}

/**
 * The environment of a plain shell: npm exports its config and package fields as npm_* variables to scripts
 * (`npm test`); left in place they would point the nested npm at this repo (npm_config_local_prefix) or carry
 * this repo's .npmrc settings into the fresh project. The cache and registry stay.
 */
export function userEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !keep.has(k.toLowerCase())) continue;
    if (k === 'INIT_CWD' || /^ONNXRUNTIME_NODE_INSTALL/i.test(k)) continue;
    env[k] = v;
  }
  return env;
}

export function sh(cmd: string, args: string[], opts: SpawnSyncOptions & { cwd: string }) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: userEnv(), timeout: 240_000, maxBuffer: 64 << 20, ...opts });
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), error: r.error };
}

function must(what: string, r: ReturnType<typeof sh>): ReturnType<typeof sh> {
  if (r.status !== 0) {
    throw new Error(`${what} failed (status ${r.status}${r.error ? `, ${r.error.message}` : ''}):\n${r.stderr.slice(-4000)}`);
  }
  return r;
}

export function packAndInstall(tmp: string): FreshInstall {
  const pack = must('npm pack', sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: REPO }));
  const [info] = JSON.parse(pack.stdout) as { filename: string; files: PackedFile[] }[];
  const tarball = path.join(tmp, info.filename);
  const app = path.join(tmp, 'app');
  cpSync(path.join(REPO, 'test/package/app'), app, { recursive: true });
  writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({ name: 'c2c-consumer', private: true, type: 'module' }, null, 2)}\n`);
  writeFileSync(path.join(app, '.npmrc'), 'onnxruntime-node-install=skip\n');
  const install = ['install', tarball, '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'];
  must('npm install <tarball> --omit=dev', sh('npm', install, { cwd: app }));
  return { tarball, files: info.files, app };
}
