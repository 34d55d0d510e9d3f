/**
 * The published package, as a new user gets it: `npm pack`, then `npm install <tarball> --omit=dev` in a fresh
 * project (no vite, no typescript, nothing from this repo), then
 *  1. `npx c2c-web convert` runs from the built JS;
 *  2. `c2c-web/node` runs C2C on the embedded pair shipped in the package (located by embeddedPair(), from
 *     another cwd) and gives the PyTorch golden tokens (models/c2c-tiny/golden, not shipped);
 *  3. `npx c2c-web serve` serves the embedded pair and the official `openai` client streams C2C from it;
 *  4. a fresh Vite app importing `c2c-web` type-checks against the shipped types, builds (the worker and the
 *     onnxruntime wasm files emitted by the app's bundler) and gives the same tokens in headless Chromium
 *     without one request leaving its origin.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { build, preview } from 'vite';
import { loadOfficialCheckpoint } from '../../src/checkpoints/official';
import { loadFuserFromDirectory } from '../../src/fuser/format/node-io';
import { OFFICIAL_DIR, fixtureFiles } from '../checkpoints/helpers';
import type { Golden } from '../engine/pair';
import { chromePath, closeBrowser, launchBrowser } from '../../e2e/harness.mjs';
import { REPO, packAndInstall, sh, userEnv, type FreshInstall } from './fresh-install';
import { requireLibBuild } from './require-lib-build';

const PAIR = 'models/c2c-tiny';
/** What the runtime reads of the embedded pair: nothing else of models/ may ship (no golden, logs, eval set, PyTorch weights). */
const RUNTIME_FILES = [
  'pair.json',
  ...['receiver', 'sharer'].flatMap((m) =>
    ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx'].map((f) => `${m}/${f}`)),
  'fuser/fuser.json',
  'fuser/fuser.safetensors',
].map((f) => `${PAIR}/${f}`);

const golden = JSON.parse(readFileSync(path.join(REPO, PAIR, 'golden/golden.json'), 'utf8')) as Golden;
/** Cases where C2C and the receiver alone answer differently: the check tells C2C from no fusion. */
const CASES = golden.cases.filter((c) => JSON.stringify(c.c2c.output_ids) !== JSON.stringify(c.receiver.output_ids)).slice(0, 2);

describe('the packed package, installed without devDependencies', () => {
  let tmp = '';
  let pkg: FreshInstall;
  const installed = () => path.join(pkg.app, 'node_modules', 'c2c-web');

  beforeAll(() => {
    requireLibBuild();
    tmp = mkdtempSync(path.join(tmpdir(), 'c2c-package-'));
    pkg = packAndInstall(tmp);
  }, 400_000);
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('ships the built entries, types and exactly the runtime files of the embedded pair', () => {
    const files = new Set(pkg.files.map((f) => f.path));
    const entries = ['bin/c2c-web.mjs', 'dist-lib/index.js', 'dist-lib/node.js', 'dist-lib/cli.js'];
    for (const f of [...entries, 'dist-lib/types/index.d.ts', 'dist-lib/types/node.d.ts']) expect(files, f).toContain(f);
    // npm always adds the README of an included folder (models/README.md, the repo's description of models/).
    expect([...files].filter((f) => f.startsWith('models/')).sort()).toEqual(['models/README.md', ...RUNTIME_FILES].sort());
    expect(CASES.length).toBeGreaterThan(0);
    // Nothing the repo alone has: the app resolves no vite (the bin must not need it) and no test/ or scripts/ files ship.
    expect(() => createRequire(path.join(pkg.app, 'package.json')).resolve('vite')).toThrow();
    expect([...files].filter((f) => /^(test|scripts|e2e|train)\//.test(f))).toEqual([]);
  });

  it('npx c2c-web convert converts an official checkpoint; bad arguments exit 2 with the usage', async () => {
    const out = path.join(tmp, 'converted');
    const r = sh('npx', ['--no', 'c2c-web', 'convert', path.join(OFFICIAL_DIR, 'tiny_qwen'), out, '--dtype', 'float32'], { cwd: pkg.app });
    expect(r.stderr.replace(/^npm warn .*\n/gm, '')).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/converted 4 projectors .* float32/);
    const converted = await loadFuserFromDirectory(out);
    const original = await loadOfficialCheckpoint(fixtureFiles('tiny_qwen', 4));
    expect(converted.config).toEqual({ ...original.config, dtype: 'float32' });
    expect(converted.layers).toEqual(original.layers);

    const bad = sh('npx', ['--no', 'c2c-web', 'convert', 'only-one'], { cwd: pkg.app });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/convert needs <official-folder> and <out-folder>[\s\S]*Usage: c2c-web convert/);
  }, 120_000);

  it('c2c-web/node: createNodeC2CEngine(embeddedPair()) gives the golden C2C tokens, run from another cwd', () => {
    const elsewhere = path.join(tmp, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(path.join(tmp, 'cases.json'), JSON.stringify(CASES.map((c) => ({ id: String(c.case), user: c.user }))));
    const args = [path.join(pkg.app, 'node-check.mjs'), path.join(tmp, 'cases.json'), String(golden.max_new_tokens)];
    const r = sh(process.execPath, args, { cwd: elsewhere });
    expect(r.status, r.stderr).toBe(0);
    type NodeCheck = { options: { fuser: string }; exported: string; device: { backend: string }; tokens: Record<string, number[]> };
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as NodeCheck;
    expect(res.options.fuser).toBe(path.join(installed(), PAIR, 'fuser'));
    expect(res.exported).toBe(path.join(installed(), PAIR, 'pair.json'));
    expect(res.device.backend).toBe('cpu');
    for (const c of CASES) expect(res.tokens[String(c.case)], String(c.case)).toEqual(c.c2c.output_ids);
  }, 120_000);

  it('npx c2c-web serve: the official openai client streams C2C completions from the installed package', async () => {
    // Its own process group, so the interrupt reaches npx and the server it started.
    const server = spawn('npx', ['--no', 'c2c-web', 'serve', '--port', '0'],
      { cwd: pkg.app, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const exited = new Promise((r) => server.once('exit', r));
    let log = '';
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "serving" line within 60 s:\n${log}`)), 60_000);
        const onData = (b: Buffer) => {
          log += b.toString();
          const m = /serving c2c-tiny .* at (http:\/\/\S+)/.exec(log);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        };
        server.stdout.on('data', onData);
        server.stderr.on('data', (b: Buffer) => (log += b.toString()));
        server.once('exit', (code) => reject(new Error(`serve exited with ${code}:\n${log}`)));
      });
      const client = new OpenAI({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
      const c = CASES[0];
      const stream = await client.chat.completions.create({ model: 'c2c-tiny', messages: [{ role: 'user', content: c.user }],
        temperature: 0, max_tokens: golden.max_new_tokens, stream: true, stream_options: { include_usage: true } });
      let text = '';
      let usage: OpenAI.CompletionUsage | null | undefined;
      for await (const ch of stream) {
        text += ch.choices[0]?.delta.content ?? '';
        usage = ch.usage ?? usage;
      }
      expect(usage?.completion_tokens).toBe(c.c2c.output_ids.length);
      expect(text).toBe((c.c2c as { text?: string }).text ?? text);
      const models = [];
      for await (const m of client.models.list()) models.push(m.id);
      expect(models).toContain('c2c-tiny/text-relay');
    } finally {
      try {
        if (server.pid) process.kill(-server.pid, 'SIGINT');
      } catch {
        // already gone (a failed start): its exit was the test's failure
      }
      await exited;
    }
  }, 120_000);

  const viteApp = 'a fresh Vite app: type-checks, builds, and gives the golden C2C tokens in Chromium with no off-origin request';
  it.skipIf(!existsSync(chromePath()))(viteApp, async () => {
    const app = pkg.app;
    // The embedded pair as static files, copied from the installed package as README.md says.
    cpSync(path.join(installed(), PAIR), path.join(app, 'public', PAIR), { recursive: true });
    const tscBin = path.join(REPO, 'node_modules/typescript/bin/tsc');
    const tsc = sh(process.execPath, [tscBin, '-p', path.join(app, 'tsconfig.json')], { cwd: app });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);

    const configFile = path.join(app, 'vite.config.mjs');
    await build({ root: app, configFile, logLevel: 'warn' });
    const assets = readdirSync(path.join(app, 'dist', 'assets'));
    expect(assets.filter((f) => /^model\.worker-.*\.js$/.test(f)), assets.join(' ')).toHaveLength(1);
    expect(assets.some((f) => /^ort-wasm-simd-threaded\.asyncify-.*\.wasm$/.test(f)), assets.join(' ')).toBe(true);
    expect(existsSync(path.join(app, 'dist', PAIR, 'fuser', 'fuser.safetensors'))).toBe(true);

    const server = await preview({ root: app, configFile, logLevel: 'warn', preview: { port: 0, open: false } });
    const addr = server.httpServer.address();
    if (!addr || typeof addr !== 'object') throw new Error('vite preview did not report an address');
    const origin = `http://127.0.0.1:${addr.port}`;
    const browser = await launchBrowser();
    try {
      const context = await browser.newContext();
      const seen: string[] = [];
      const offOrigin: string[] = [];
      await context.route('**/*', (route) => {
        const url = route.request().url();
        seen.push(url);
        if (url.startsWith(`${origin}/`) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
        offOrigin.push(url);
        return route.abort();
      });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${origin}/`);
      const res = await page.evaluate(async ({ cases, max }) => {
        // window.c2c: test/package/app/main.ts (its types live in the app, which this repo does not type-check).
        type Api = { device: unknown; c2c(user: string, max: number): Promise<number[]> };
        const api = await (window as unknown as { c2c: Promise<Api> }).c2c;
        const tokens: Record<string, number[]> = {};
        for (const c of cases) tokens[c.id] = await api.c2c(c.user, max);
        return { isolated: globalThis.crossOriginIsolated, device: api.device, tokens };
      }, { cases: CASES.map((c) => ({ id: String(c.case), user: c.user })), max: golden.max_new_tokens });
      expect(errors).toEqual([]);
      expect(res.isolated).toBe(true);
      expect(res.device).toMatchObject({ backend: 'wasm', topology: 'workers' });
      for (const c of CASES) expect(res.tokens[String(c.case)], String(c.case)).toEqual(c.c2c.output_ids);
      // The route saw the worker's own fetches (models, ORT wasm), so "nothing off-origin" covers the workers too.
      expect(seen.some((u) => u.endsWith('/receiver/onnx/model.onnx'))).toBe(true);
      expect(seen.some((u) => /\/assets\/ort-wasm-simd-threaded\.asyncify-.*\.wasm$/.test(u))).toBe(true);
      expect(offOrigin).toEqual([]);
    } finally {
      await closeBrowser(browser);
      await new Promise<void>((resolve) => server.httpServer.close(() => resolve()));
    }
  }, 240_000);
});
