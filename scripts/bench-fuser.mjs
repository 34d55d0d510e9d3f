#!/usr/bin/env node
/**
 * Kernel benchmark of the WebGPU C2C fuser on dawn.node (npm `webgpu`). Without a GPU the adapter is
 * SwiftShader, a CPU rasterizer: its numbers say nothing about GPU speed. For each config it measures, in one
 * run on one device: the fused whole-cache GFLOP/s (`fuseBuffers`, GPU-resident KV), the copy path (`fuse`,
 * upload + readback included), a plain GEMM chain of the same shapes (the same tiled kernel without fusion:
 * no RMSNorm/GELU/residual/combine), the TypeScript CPU reference, and time per fused token; plus the same
 * fuser with int8 weights (`weightDType: 'int8'`, the same weights quantised) and the GPU weight bytes of both.
 * Writes bench/fuser-<device>.json. TS modules load through vite's ssrLoadModule (no build step).
 *
 * Flags: --qwen-layers N (receiver layers of the Qwen3-0.6B ← Qwen2.5-0.5B config; default 1 on a
 *        fallback adapter, 28 otherwise; 0 skips it), --qwen-tokens N (default 4 on a fallback adapter, 128
 *        otherwise), --small-tokens N (default 32), --reps N (timed repetitions, default 3), --out FILE.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createServer } from 'vite';

const REPO = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : dflt;
};
const outArg = args.includes('--out') ? args[args.indexOf('--out') + 1] : undefined;

const vite = await createServer({ root: REPO, configFile: false, logLevel: 'error', appType: 'custom',
  server: { middlewareMode: true, hmr: false, ws: false } });
const load = (p) => vite.ssrLoadModule(p);
const { getTestGpu } = await load('/test/webgpu/dawn.ts');
const { createWebGPUFuser } = await load('/src/fuser/webgpu/index.ts');
const { plainGemmChain } = await load('/scripts/gpu-kit/gemm-chain.ts');
const { cacheToGpu, randomCache } = await load('/scripts/gpu-kit/kv.ts');
const { fuseCache } = await load('/src/fuser/reference.ts');
const { randomFuserWeights, seededRandom } = await load('/src/fuser/random-weights.ts');
const { quantizeFuserWeights } = await load('/src/fuser/quantize.ts');
const { pathFlopsPerToken } = await load('/src/fuser/shapes.ts');

const gpu = await getTestGpu();
const { device, adapter } = gpu;
const info = adapter.info ?? {};
const fallback = Boolean(info.isFallbackAdapter) || info.architecture === 'swiftshader';
const deviceName = [info.vendor, info.architecture].filter(Boolean).join('-') || 'unknown';
const reps = flag('--reps', 3);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function timeIt(fn) {
  await fn(); // warm-up (pipeline compile, first-use allocations)
  const t = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}

/** Medians of `fns` timed in alternation, so load drift on a shared machine hits both alike. */
async function timeInterleaved(fns) {
  for (const fn of fns) await fn();
  const t = fns.map(() => []);
  for (let i = 0; i < reps; i++)
    for (const [j, fn] of fns.entries()) {
      const t0 = performance.now();
      await fn();
      t[j].push(performance.now() - t0);
    }
  return t.map(median);
}

/** FLOPs of one open path per token (multiply-add = 2), from the one source of projector shapes. */
const pathFlops = (cfg) => pathFlopsPerToken(cfg);

async function benchConfig(name, opts, tokens) {
  const t0 = performance.now();
  const weights = randomFuserWeights(42, opts);
  const cfg = weights.config;
  const rand = seededRandom(7);
  const receiver = randomCache(rand, cfg.receiver, tokens);
  const sharer = randomCache(rand, cfg.sharer, tokens);
  const fuser = await createWebGPUFuser(weights, { device, dtype: device.features.has('shader-f16') ? 'f16' : 'f32' });
  const setupMs = performance.now() - t0;
  const t8 = performance.now();
  const int8Fuser = await createWebGPUFuser(quantizeFuserWeights(weights), { device, wgslLanguageFeatures: gpu.wgslLanguageFeatures });
  const int8SetupMs = performance.now() - t8;
  const paths = cfg.receiver.numLayers * 2;
  const flops = paths * tokens * pathFlops(cfg);

  const rBufs = cacheToGpu(device, receiver);
  const sBufs = cacheToGpu(device, sharer);
  const resident = (f) => async () => {
    const out = await f.fuseBuffers(rBufs, sBufs, tokens);
    out.forEach((l) => (l.key.destroy(), l.value.destroy()));
  };
  const [fusedMs, copyMs, int8Ms] = await timeInterleaved([resident(fuser), () => fuser.fuse(receiver, sharer), resident(int8Fuser)]);
  const plain = await plainGemmChain(device, cfg, tokens, paths, timeIt); // the same tiled kernel without fusion
  const t1 = performance.now();
  fuseCache(weights, receiver, sharer);
  const referenceMs = performance.now() - t1;
  fuser.dispose();
  int8Fuser.dispose();
  [...rBufs, ...sBufs].forEach((l) => (l.key.destroy(), l.value.destroy()));

  const r = {
    name,
    receiver: cfg.receiver,
    sharer: cfg.sharer,
    hiddenDim: cfg.hiddenDim,
    intermediateDim: cfg.intermediateDim,
    tokens,
    dtype: fuser.dtype,
    chunkTokens: fuser.chunkTokens,
    gflop: flops / 1e9,
    setupMs: +setupMs.toFixed(1),
    weightBytes: fuser.weightBytes,
    fuser: { ms: +fusedMs.toFixed(2), gflops: +(flops / fusedMs / 1e6).toFixed(4), msPerToken: +(fusedMs / tokens).toFixed(3) },
    fuserCopyPath: { ms: +copyMs.toFixed(2), gflops: +(flops / copyMs / 1e6).toFixed(4), msPerToken: +(copyMs / tokens).toFixed(3) },
    int8: {
      weightDType: int8Fuser.weightDType,
      weightBytes: int8Fuser.weightBytes,
      setupMs: +int8SetupMs.toFixed(1),
      ms: +int8Ms.toFixed(2),
      gflops: +(flops / int8Ms / 1e6).toFixed(4),
      msPerToken: +(int8Ms / tokens).toFixed(3),
    },
    plainGemm: { ms: +plain.ms.toFixed(2), gflops: +(plain.flops / plain.ms / 1e6).toFixed(4) },
    referenceTs: { ms: +referenceMs.toFixed(2), gflops: +(flops / referenceMs / 1e6).toFixed(4),
      msPerToken: +(referenceMs / tokens).toFixed(3) },
  };
  console.log(`${name}: ${tokens} tokens, ${r.gflop.toFixed(3)} GFLOP`
    + ` | fuser ${r.fuser.ms} ms (${r.fuser.gflops} GFLOP/s, ${r.fuser.msPerToken} ms/token) | copy path ${r.fuserCopyPath.ms} ms`
    + ` | int8 fuser ${r.int8.ms} ms (${r.int8.gflops} GFLOP/s; weights ${r.int8.weightBytes} B vs ${r.weightBytes} B ${r.dtype})`
    + ` | plain GEMM ${r.plainGemm.ms} ms (${r.plainGemm.gflops} GFLOP/s)`
    + ` | TS reference ${r.referenceTs.ms} ms (${r.referenceTs.gflops} GFLOP/s)`);
  return r;
}

const results = [];
try {
  results.push(
    await benchConfig('embedded-pair', { receiver: { numLayers: 4, kvHeads: 2, headDim: 32 },
      sharer: { numLayers: 3, kvHeads: 4, headDim: 16 }, hiddenDim: 128, intermediateDim: 128 }, flag('--small-tokens', 32)),
  );
  const qwenLayers = flag('--qwen-layers', fallback ? 1 : 28);
  if (qwenLayers > 0)
    results.push(
      await benchConfig(
        `qwen3-0.6b<-qwen2.5-0.5b${qwenLayers < 28 ? ` (${qwenLayers} of 28 layers)` : ''}`,
        { receiver: { numLayers: qwenLayers, kvHeads: 8, headDim: 128 },
          sharer: { numLayers: Math.max(1, qwenLayers - 4), kvHeads: 2, headDim: 64 }, hiddenDim: 1024, intermediateDim: 1024 },
        flag('--qwen-tokens', fallback ? 4 : 128),
      ),
    );
} finally {
  gpu.release();
  await vite.close();
}

const report = {
  device: { runtime: `dawn.node (npm webgpu)`, vendor: info.vendor, architecture: info.architecture, description: info.description,
    isFallbackAdapter: fallback, shaderF16: device.features.has('shader-f16') },
  caveat: fallback
    ? 'SwiftShader is a CPU rasterizer (no GPU available): these are not GPU numbers, only relative costs on this machine.' : undefined,
  date: new Date().toISOString(),
  reps,
  results,
};
const out = path.resolve(REPO, outArg ?? `bench/fuser-${deviceName}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
console.log(`wrote ${path.relative(REPO, out)}`);
