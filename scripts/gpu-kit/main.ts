/**
 * Entry of the GPU kit's bundled bench (`bench.mjs` in the kit; built by scripts/gpu-kit.mjs): loads dawn.node by
 * path (no node_modules at run time), asks for a device with the adapter's limits (and shader-f16 when it has it),
 * runs scripts/gpu-kit/bench.ts and writes `<out>/gpu-kit-<vendor>-<architecture>.json`. Exit code 1 when a check fails.
 *
 * Flags: --dawn FILE (default: dawn.node beside this file), --out DIR (default $OUT, else .), --layers N (receiver
 * layers, default 28), --tokens N (default 170), --reps N, --warmup N, --check-tokens N, --dtypes f16,f32,int8.
 */
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DTYPES, runKitBench, type BenchDType } from './bench';

const { values: a } = parseArgs({
  options: {
    dawn: { type: 'string' }, out: { type: 'string' }, layers: { type: 'string' }, tokens: { type: 'string' },
    reps: { type: 'string' }, warmup: { type: 'string' }, 'check-tokens': { type: 'string' }, dtypes: { type: 'string' },
  },
});
const num = (v: string | undefined) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a count: ${v}`);
  return n;
};
const dtypes = a.dtypes?.split(',').map((d) => d.trim()) as BenchDType[] | undefined;
for (const d of dtypes ?? []) if (!BENCH_DTYPES.includes(d)) throw new Error(`unknown dtype ${d} (f16, f32, int8)`);

const here = path.dirname(new URL(import.meta.url).pathname);
const dawnPath = path.resolve(a.dawn ?? process.env.C2C_DAWN_NODE ?? path.join(here, 'dawn.node'));
const outDir = path.resolve(a.out ?? process.env.OUT ?? '.');
const started = new Date();
const t0 = performance.now();
const log = (s: string) => console.log(`[gpu-kit] ${((performance.now() - t0) / 1000).toFixed(1)}s ${s}`);

const { create, globals } = createRequire(import.meta.url)(dawnPath) as { create: (flags: string[]) => GPU; globals: object };
Object.assign(globalThis, globals); // GPUBufferUsage, GPUMapMode, … as in a browser
let gpu: GPU | undefined = create([]);
const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
if (!adapter) throw new Error(`dawn.node found no WebGPU adapter (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? ''})`);
const limits: Record<string, number> = {};
const LIMITS = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage'] as const;
for (const k of LIMITS)
  limits[k] = adapter.limits[k];
const requiredFeatures: GPUFeatureName[] = adapter.features.has('shader-f16') ? ['shader-f16'] : [];
const device = await adapter.requestDevice({ requiredLimits: limits, requiredFeatures });
device.addEventListener('uncapturederror', (e) => log(`uncaptured GPU error: ${(e as GPUUncapturedErrorEvent).error.message}`));
const { vendor, architecture, description } = adapter.info;
log(`adapter ${vendor} / ${architecture} / ${description}; features ${[...adapter.features].join(' ')}`);

const report = await runKitBench(device, adapter, {
  layers: num(a.layers), tokens: num(a.tokens), reps: num(a.reps), warmup: num(a.warmup), checkTokens: num(a['check-tokens']),
  dtypes, wgslLanguageFeatures: new Set(gpu.wgslLanguageFeatures), log,
});
device.destroy();
gpu = undefined; // let the process exit

const json = {
  bench: 'c2c-web gpu-kit', date: started.toISOString(), wallS: +((performance.now() - t0) / 1000).toFixed(1),
  runtime: { node: process.version, dawn: 'dawn.node (npm webgpu)', vkIcd: process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES },
  ...report,
};
const name = `gpu-kit-${([vendor, architecture].filter(Boolean).join('-') || 'unknown').replace(/[^A-Za-z0-9._-]/g, '_')}.json`;
mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, name), JSON.stringify(json, null, 2) + '\n');
log(`wrote ${path.join(outDir, name)}; ${report.ok ? 'all checks passed' : `FAILED: ${report.errors.join('; ')}`}`);
process.exitCode = report.ok ? 0 : 1;
