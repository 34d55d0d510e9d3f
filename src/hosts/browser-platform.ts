/**
 * HostPlatform for browsers (used inside the model workers): WebGPU detection with a reported wasm fallback,
 * one GPUDevice per worker handed to onnxruntime-web's native WebGPU EP and to the WebGPU fuser (whose failure is
 * a reported CPU-fuser fallback), offline transformers.js settings (local models, ORT wasm files bundled by
 * Vite — never a CDN), the fuser (either format) from a URL, cached in the Cache API store transformers.js uses.
 */
import { env } from '@huggingface/transformers';
import ortWasmMjs from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';
import ortWasmBinary from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import { httpFileReader } from '../fuser/format/http-reader';
import { loadFuserSource } from '../fuser-source';
import { webFuserCache } from '../fuser-source/caches';
import type { OrtModuleLike } from '../fuser/onnx';
import { createReferenceFuser } from '../fuser/reference';
import type { CreatedFuser, FuserWeights, HostPlatform, ResolvedDevice, HostInit } from '../types';

const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups' as GPUFeatureName, 'timestamp-query'];
const LIMITS = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage'] as const;

async function requestGpu(): Promise<ResolvedDevice> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new Error('navigator.gpu is missing (WebGPU not supported or not enabled in this browser)');
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('navigator.gpu.requestAdapter() returned null (no usable WebGPU adapter)');
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS) requiredLimits[k] = adapter.limits[k];
  // Our own device with the adapter's limits: ORT takes it through the EP option, the fuser uses it too.
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return {
    backend: 'webgpu',
    shaderF16: device.features.has('shader-f16'),
    adapter: {
      vendor: info.vendor,
      architecture: info.architecture,
      description: info.description,
      isFallbackAdapter: info.isFallbackAdapter ?? (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    },
    gpuDevice: device,
    sessionOptions: { executionProviders: [{ name: 'webgpu', device }] },
  };
}

/** CPU fuser: the fuser as one ONNX graph on the wasm EP of transformers.js's own onnxruntime-web instance. */
async function createCpuFuser(weights: FuserWeights, kind: 'onnx' | 'reference'): Promise<CreatedFuser> {
  if (kind === 'reference') return { fuser: createReferenceFuser(weights) };
  try {
    // transformers.js imports 'onnxruntime-web/webgpu'; in a Vite build this import is the same module instance.
    const ort = await import('onnxruntime-web/webgpu');
    const onnx = ort.env as { wasm?: { wasmPaths?: unknown } };
    // The fuser may create the first ORT session of this worker: point ORT at the bundled wasm files first.
    if (onnx.wasm && !onnx.wasm.wasmPaths) onnx.wasm.wasmPaths = { mjs: new URL(ortWasmMjs, globalThis.location.href).href, wasm: new URL(ortWasmBinary, globalThis.location.href).href };
    const { createOnnxFuser } = await import('../fuser/onnx');
    // No warm-up run: it would overlap the models' warm-up forwards in this worker, and onnxruntime-web's wasm
    // backend corrupts concurrent runs (transformers.js serialises its own; the fuser's run between prefills).
    return { fuser: await createOnnxFuser(weights, { ort: ort as unknown as OrtModuleLike, executionProviders: ['wasm'], warmup: false }) };
  } catch (e) {
    // Never silent: the reason reaches DeviceReport.fuserFallbackReason.
    const fallbackReason = `ONNX CPU fuser unavailable, using the plain-JS reference fuser: ${(e as Error).message}`;
    console.warn(fallbackReason);
    return { fuser: createReferenceFuser(weights), fallbackReason };
  }
}

/** transformers.js's own default, restored when an engine names no mirror. */
const DEFAULT_REMOTE_HOST = env.remoteHost;

export function browserPlatform(): HostPlatform {
  let cpuFuser: 'onnx' | 'reference' = 'onnx';
  let cache = false;
  return {
    async resolveDevice(init: HostInit): Promise<ResolvedDevice> {
      cpuFuser = init.cpuFuser ?? 'onnx';
      cache = init.cache ?? init.allowRemoteModels;
      if (init.device === 'wasm') return { backend: 'wasm', shaderF16: false };
      if (init.device === 'cpu') return { backend: 'wasm', shaderF16: false, fallbackReason: "device 'cpu' is Node-only; using wasm" };
      try {
        return await requestGpu();
      } catch (e) {
        // Never silent: the reason reaches DeviceReport.fallbackReason.
        return { backend: 'wasm', shaderF16: false, fallbackReason: `WebGPU unavailable, using wasm: ${(e as Error).message}` };
      }
    },
    configureEnv(source, init, signal) {
      env.allowRemoteModels = init.allowRemoteModels;
      env.remoteHost = init.remoteHost ?? DEFAULT_REMOTE_HOST;
      env.allowLocalModels = true;
      // An origin-relative path ('/models/'), never an http URL: transformers.js 4.3 skips the local
      // lookup for URLs (and would then report the tokenizer as missing).
      const base = source.localPath ?? '/models/';
      env.localModelPath = base.endsWith('/') ? base : `${base}/`;
      env.useBrowserCache = init.cache ?? init.allowRemoteModels;
      const onnx = env.backends.onnx as { wasm?: { wasmPaths?: unknown; proxy?: boolean } };
      // Two workers each running a threaded wasm pool oversubscribe the cores (idle pools spin):
      // in the 'workers' topology each worker gets half of them.
      if (onnx.wasm && init.topology === 'workers' && init.device !== 'webgpu') {
        (onnx.wasm as { numThreads?: number }).numThreads = Math.max(1, Math.floor((globalThis.navigator?.hardwareConcurrency ?? 2) / 2));
      }
      if (onnx.wasm) onnx.wasm.wasmPaths = { mjs: new URL(ortWasmMjs, globalThis.location.href).href, wasm: new URL(ortWasmBinary, globalThis.location.href).href };
      // Downloads of this load stop when the request's signal fires.
      const base_fetch = globalThis.fetch.bind(globalThis);
      env.fetch = (input: string | URL, options?: RequestInit) => base_fetch(input, { ...options, signal });
    },
    loadFuserWeights: (req, o) => {
      const reader = httpFileReader(req.url, { cache: cache ? webFuserCache(env) : undefined, signal: o.signal, onProgress: o.onProgress });
      return loadFuserSource(reader, req, o.signal);
    },
    async createFuser(weights, device) {
      if (device.backend !== 'webgpu' || !device.gpuDevice) return createCpuFuser(weights, cpuFuser);
      try {
        const { createWebGPUFuser } = await import('../fuser/webgpu');
        return { fuser: await createWebGPUFuser(weights, { device: device.gpuDevice }) };
      } catch (e) {
        // The models stay on WebGPU, the fuser runs on the CPU (the KV is downloaded), and the report says why.
        const reason = `WebGPU fuser failed, using the CPU fuser: ${(e as Error).message}`;
        console.warn(reason);
        const cpu = await createCpuFuser(weights, cpuFuser);
        return { fuser: cpu.fuser, fallbackReason: [reason, cpu.fallbackReason].filter(Boolean).join('; ') };
      }
    },
  };
}
