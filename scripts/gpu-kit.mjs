#!/usr/bin/env node
/**
 * `npm run gpu-kit`: builds a self-contained folder to run the WGSL fuser bench on a machine with a GPU, no network
 * and no Node (docs/gpu-kit.md). Contents: this Node binary and dawn.node, xz-compressed; `bench.mjs`, one bundle
 * of scripts/gpu-kit/main.ts (Vite SSR build, no node_modules at run time); the Vulkan loader .debs (amd64,
 * `apt-get download`, as the device README's recipe); `run.sh`; `kit.json` (sizes, sources). Fails when the kit
 * exceeds 60 MiB. Unchanged sources are not recompressed (kit.json keeps their size and mtime).
 *
 * Flags: --out DIR (default .cache/gpu-kit), --max-mib N (default 60).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'vite';

const REPO = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({ options: { out: { type: 'string' }, 'max-mib': { type: 'string' } } });
const KIT = path.resolve(REPO, args.out ?? '.cache/gpu-kit');
const MAX_MIB = Number(args['max-mib'] ?? 60);
/** The device README's loader set; libvulkan1 is the one the bench needs, libglvnd0 what NVIDIA's ICD links. */
const DEBS = ['libvulkan1', 'libglvnd0', 'libglx0', 'libegl1', 'libgl1', 'libopengl0', 'libgles2'];
const DAWN = path.join(REPO, 'node_modules/webgpu/dist/linux-x64/dawn.node');
const log = (s) => console.log(`[gpu-kit] ${s}`);
const mib = (b) => +(b / 2 ** 20).toFixed(2);

if (process.platform !== 'linux' || process.arch !== 'x64')
  throw new Error(`the kit carries this Node binary: needs linux-x64, not ${process.platform}-${process.arch}`);
mkdirSync(path.join(KIT, 'debs'), { recursive: true });
const manifestPath = path.join(KIT, 'kit.json');
const previous = existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, 'utf8')) : {};

/** xz -9 of `src` into the kit, skipped when the source's size and mtime match the last build. */
function compressed(src, name) {
  const st = statSync(src);
  const stamp = { source: src, bytes: st.size, mtimeMs: st.mtimeMs };
  const dest = path.join(KIT, `${name}.xz`);
  const old = previous.files?.[`${name}.xz`]?.from;
  if (existsSync(dest) && old?.source === src && old.bytes === st.size && old.mtimeMs === st.mtimeMs) {
    log(`${name}.xz: up to date`);
    return stamp;
  }
  const t = performance.now();
  execFileSync('sh', ['-c', 'nice -n 10 xz -9 -T2 -c "$1" > "$2.tmp" && mv "$2.tmp" "$2"', 'sh', src, dest], { stdio: 'inherit' });
  log(`${name}.xz: ${mib(st.size)} MiB → ${mib(statSync(dest).size)} MiB in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  return stamp;
}

// 1. Node and dawn.node.
if (!existsSync(DAWN)) throw new Error(`dawn.node not found at ${DAWN} (npm package webgpu)`);
const sources = { 'node.xz': compressed(process.execPath, 'node'), 'dawn.node.xz': compressed(DAWN, 'dawn.node') };

// 2. The bench, one ESM file with everything but Node's built-ins inlined.
const tb = performance.now();
await build({
  configFile: false, root: REPO, logLevel: 'warn', publicDir: false,
  ssr: { noExternal: true, target: 'node' },
  build: {
    ssr: path.join(REPO, 'scripts/gpu-kit/main.ts'), outDir: KIT, emptyOutDir: false, minify: false, target: 'node20',
    rolldownOptions: { output: { entryFileNames: 'bench.mjs', format: 'esm', codeSplitting: false } },
  },
});
log(`bench.mjs: bundled in ${((performance.now() - tb) / 1000).toFixed(1)} s`);

// 3. The Vulkan loader .debs for amd64 (Debian's own lists under .cache; fetched once).
const debDir = path.join(KIT, 'debs');
const have = (pkg) => readdirSync(debDir).some((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
const missing = DEBS.filter((p) => !have(p));
if (missing.length) {
  const lists = path.join(REPO, '.cache/gpu-kit-apt');
  mkdirSync(path.join(lists, 'partial'), { recursive: true });
  const o = ['-oAPT::Architecture=amd64', '-oAPT::Architectures=amd64', `-oDir::State::Lists=${lists}`];
  execFileSync('apt-get', [...o, '-q', 'update'], { stdio: 'inherit' });
  execFileSync('apt-get', [...o, 'download', ...missing], { stdio: 'inherit', cwd: debDir });
}

// 4. run.sh.
copyFileSync(path.join(REPO, 'scripts/gpu-kit/run.sh'), path.join(KIT, 'run.sh'));
chmodSync(path.join(KIT, 'run.sh'), 0o755);

// 5. Sizes; fail over the limit.
for (const f of readdirSync(KIT)) if (/^(out|work)$/.test(f)) rmSync(path.join(KIT, f), { recursive: true, force: true });
const files = {};
const walk = (dir) => {
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, f.name);
    if (f.isDirectory()) walk(p);
    else if (f.name !== 'kit.json') files[path.relative(KIT, p)] = { bytes: statSync(p).size, from: sources[path.relative(KIT, p)] };
  }
};
walk(KIT);
const total = Object.values(files).reduce((n, f) => n + f.bytes, 0);
const manifest = { built: new Date().toISOString(), node: process.version, totalBytes: total, totalMiB: mib(total), files };
writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
for (const [f, { bytes }] of Object.entries(files)) log(`  ${f.padEnd(40)} ${mib(bytes).toFixed(2).padStart(7)} MiB`);
log(`total ${mib(total)} MiB (limit ${MAX_MIB} MiB) in ${path.relative(REPO, KIT) || KIT}`);
if (total > MAX_MIB * 2 ** 20) {
  console.error(`[gpu-kit] the kit is ${mib(total)} MiB, over the ${MAX_MIB} MiB limit`);
  process.exit(1);
}
