/**
 * dawn.node (npm `webgpu`) for Node kernel tests, on a software Vulkan driver: Chromium's SwiftShader (default;
 * no shader-f16) or Mesa 25 lavapipe (`getTestGpu('lavapipe')`: llvmpipe with shader-f16, for the f16 kernels and
 * the larger fuser runs, platform notes §11). Sets VK_ICD_FILENAMES and XDG_RUNTIME_DIR (a fresh 0700 dir) before
 * the GPU is created; when no system libvulkan is installed, preloads the loader that ships next to the ICD (glibc
 * then resolves Dawn's dlopen("libvulkan.so.1") to it by soname). vitest runs each file in its own process
 * (pool 'forks'), so each file picks its driver. `C2C_VK_ICD` overrides the file for every suite.
 */
import { existsSync, mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir, constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { encodeDispatches, type DispatchRecord, type PipelineCache } from '../../src/fuser/webgpu/program';

import { LAVAPIPE_ICD, lavapipeProblem } from '../../scripts/ensure-mesa.mjs';

export { LAVAPIPE_ICD };
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
export type TestDriver = 'swiftshader' | 'lavapipe';

export const ICD_PATH = process.env.C2C_VK_ICD ?? SWIFTSHADER_ICD;
export const skipReason = existsSync(ICD_PATH) ? undefined : `SwiftShader Vulkan ICD not found at ${ICD_PATH} (install chromium)`;
/** Why lavapipe suites fall back or skip (undefined when a Mesa ≥ 25 lavapipe is installed). */
const problem = lavapipeProblem();
export const lavapipeMissing = problem
  ? `${problem} (Debian 12: apt-get install -t bookworm-backports mesa-vulkan-drivers; npm test installs it as root)`
  : undefined;
/** Skip reason for suites that need shader-f16 (only lavapipe has it among the software drivers). */
export const f16SkipReason = process.env.C2C_VK_ICD ? undefined : lavapipeMissing;

/** The ICD a suite gets for `driver`: lavapipe falls back to SwiftShader, saying why, when it is absent. */
function icdFor(driver: TestDriver): string {
  if (process.env.C2C_VK_ICD) return process.env.C2C_VK_ICD;
  if (driver === 'lavapipe' && !lavapipeMissing) return LAVAPIPE_ICD;
  if (driver === 'lavapipe') console.warn(`[dawn] ${lavapipeMissing}: using SwiftShader (slower, no shader-f16)`);
  return SWIFTSHADER_ICD;
}

const RTLD_NODELETE = 0x1000;

function preloadVulkanLoader(icd: string): void {
  const flags = osConstants.dlopen.RTLD_NOW | osConstants.dlopen.RTLD_GLOBAL | RTLD_NODELETE;
  for (const lib of ['libvulkan.so.1', join(dirname(icd), 'libvulkan.so.1')]) {
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, lib, flags);
    } catch (e) {
      // Not a Node addon, so dlopen succeeds and registration fails: the library stays loaded (NODELETE).
      if (/did not self-register/.test(String((e as Error).message))) return;
    }
  }
}

export interface TestGpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** The Vulkan ICD file in use. */
  icd: string;
  /** The instance's WGSL language features (dawn.node has no `navigator.gpu`). */
  wgslLanguageFeatures: ReadonlySet<string>;
  /** A separate device (fresh adapter), e.g. to destroy in a device-loss test. */
  newDevice(): Promise<GPUDevice>;
  release(): void;
}

let shared: Promise<TestGpu> | undefined;

/**
 * One device per test file (dawn.node start-up is cheap, but sharing keeps the process count low). The first
 * call fixes the driver of the process; shader-f16 is requested whenever the adapter has it.
 */
export function getTestGpu(driver: TestDriver = 'swiftshader'): Promise<TestGpu> {
  shared ??= (async () => {
    const icd = icdFor(driver);
    process.env.VK_ICD_FILENAMES = icd;
    // llvmpipe JIT-compiles each pipeline on first dispatch; 128-bit vectors halve that (measured 31 s vs 57 s
    // for one fuser's kernels on a loaded 2-core VM) and test shapes are tiny.
    if (icd === LAVAPIPE_ICD) process.env.LP_NATIVE_VECTOR_WIDTH ??= '128';
    const xdg = mkdtempSync(join(tmpdir(), 'c2c-xdg-'));
    chmodSync(xdg, 0o700);
    process.env.XDG_RUNTIME_DIR = xdg;
    preloadVulkanLoader(icd);
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    let gpu: GPU | undefined = create([]);
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error(`dawn.node found no adapter with ICD ${icd}`);
    const deviceFor = (a: GPUAdapter) => {
      const limits: Record<string, number> = {};
      for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize',
        'maxStorageBuffersPerShaderStage'] as const)
        limits[k] = a.limits[k];
      const requiredFeatures: GPUFeatureName[] = a.features.has('shader-f16') ? ['shader-f16'] : [];
      return a.requestDevice({ requiredLimits: limits, requiredFeatures });
    };
    const device = await deviceFor(adapter);
    return {
      device,
      adapter,
      icd,
      wgslLanguageFeatures: new Set(gpu.wgslLanguageFeatures),
      async newDevice() {
        const a = await gpu!.requestAdapter();
        if (!a) throw new Error('no second adapter');
        return deviceFor(a);
      },
      release() {
        device.destroy();
        gpu = undefined; // drop the instance so the process can exit
        shared = undefined;
      },
    };
  })();
  return shared;
}

/** A storage buffer holding `data`'s bytes (f32 values, or f16 bits in a Uint16Array). */
export function upload(device: GPUDevice, data: Float32Array | Uint16Array, extraUsage = 0): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buf = device.createBuffer(
    { size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | extraUsage, mappedAtCreation: true });
  new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buf.unmap();
  return buf;
}

/** Raw u32 words (packed int8 weights with f32 words beside them) into a storage buffer. */
export function uploadWords(device: GPUDevice, words: Uint32Array): GPUBuffer {
  const size = Math.max(16, Math.ceil(words.byteLength / 16) * 16);
  const buf = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
  new Uint32Array(buf.getMappedRange()).set(words);
  buf.unmap();
  return buf;
}

export function emptyBuffer(device: GPUDevice, floats: number): GPUBuffer {
  return device.createBuffer({ size: Math.max(16, Math.ceil((floats * 4) / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
}

export async function readback(device: GPUDevice, buf: GPUBuffer, floats: number): Promise<Float32Array> {
  return new Float32Array(await readBytes(device, buf, floats * 4));
}

/** f16 bits of `count` halves from the start of `buf`. */
export async function readback16(device: GPUDevice, buf: GPUBuffer, count: number): Promise<Uint16Array> {
  return new Uint16Array(await readBytes(device, buf, count * 2));
}

async function readBytes(device: GPUDevice, buf: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  const size = Math.max(16, Math.ceil(bytes / 16) * 16);
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0, bytes);
  staging.destroy();
  return out;
}

/** The shared NaN-poisoned comparison (test/util/allclose.ts), re-exported for the kernel tests. */
export { maxAbsDiff } from '../util/allclose';

/** Encodes and submits dispatch records in one pass, waits, and fails on any validation error. */
export async function runDispatches(device: GPUDevice, cache: PipelineCache, records: DispatchRecord[]): Promise<void> {
  device.pushErrorScope('validation');
  const enc = device.createCommandEncoder();
  const ub = encodeDispatches(device, cache, enc, records);
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  await device.queue.onSubmittedWorkDone();
  ub?.destroy();
  if (err) throw new Error(`WebGPU validation error: ${err.message}`);
}
