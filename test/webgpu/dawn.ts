/**
 * dawn.node (npm `webgpu`) on SwiftShader for Node kernel tests. Sets VK_ICD_FILENAMES to Chromium's
 * SwiftShader ICD and XDG_RUNTIME_DIR to a fresh 0700 dir before the GPU is created; when no system
 * libvulkan is installed, preloads the loader that ships next to the ICD (glibc then resolves Dawn's
 * dlopen("libvulkan.so.1") to it by soname). Skips only when the ICD file is absent.
 */
import { existsSync, mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir, constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { encodeDispatches, type DispatchRecord, type PipelineCache } from '../../src/fuser/webgpu/program';

export const ICD_PATH = process.env.C2C_VK_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';
export const skipReason = existsSync(ICD_PATH) ? undefined : `SwiftShader Vulkan ICD not found at ${ICD_PATH} (install chromium)`;

const RTLD_NODELETE = 0x1000;

function preloadVulkanLoader(): void {
  const flags = osConstants.dlopen.RTLD_NOW | osConstants.dlopen.RTLD_GLOBAL | RTLD_NODELETE;
  for (const lib of ['libvulkan.so.1', join(dirname(ICD_PATH), 'libvulkan.so.1')]) {
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
  /** The instance's WGSL language features (dawn.node has no `navigator.gpu`). */
  wgslLanguageFeatures: ReadonlySet<string>;
  /** A separate device (fresh adapter), e.g. to destroy in a device-loss test. */
  newDevice(): Promise<GPUDevice>;
  release(): void;
}

let shared: Promise<TestGpu> | undefined;

/** One device per test file (dawn.node start-up is cheap, but sharing keeps the process count low). */
export function getTestGpu(): Promise<TestGpu> {
  shared ??= (async () => {
    process.env.VK_ICD_FILENAMES = ICD_PATH;
    const xdg = mkdtempSync(join(tmpdir(), 'c2c-xdg-'));
    chmodSync(xdg, 0o700);
    process.env.XDG_RUNTIME_DIR = xdg;
    preloadVulkanLoader();
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    let gpu: GPU | undefined = create([]);
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error(`dawn.node found no adapter with ICD ${ICD_PATH}`);
    const deviceFor = (a: GPUAdapter) => {
      const limits: Record<string, number> = {};
      for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxStorageBuffersPerShaderStage'] as const)
        limits[k] = a.limits[k];
      return a.requestDevice({ requiredLimits: limits });
    };
    const device = await deviceFor(adapter);
    return {
      device,
      adapter,
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
  const buf = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | extraUsage, mappedAtCreation: true });
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
  return device.createBuffer({ size: Math.max(16, Math.ceil((floats * 4) / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
}

export async function readback(device: GPUDevice, buf: GPUBuffer, floats: number): Promise<Float32Array> {
  const size = Math.max(16, Math.ceil((floats * 4) / 16) * 16);
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0, floats * 4));
  staging.destroy();
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

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
