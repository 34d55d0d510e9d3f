/**
 * GPUDevice acquisition and loss tracking for the fuser. A caller-supplied device (e.g. the one passed to
 * onnxruntime-web's native WebGPU EP) is used as is and never destroyed; otherwise one is requested with the
 * adapter's own limits (the defaults cap storage bindings at 128 MiB) and `shader-f16` when present.
 */
import { InvalidInputError, MemoryBudgetError, WebGPUUnavailableError } from '../../errors';

/** Limits the kernels depend on, copied from the adapter when we create the device. */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

export interface AcquiredDevice {
  device: GPUDevice;
  /** True when we created it (then `dispose()` destroys it). */
  owned: boolean;
}

export async function acquireDevice(device: GPUDevice | undefined, wantF16: boolean): Promise<AcquiredDevice> {
  if (device) return { device, owned: false };
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new WebGPUUnavailableError('WebGPU is not available: navigator.gpu is undefined (pass a GPUDevice in options.device)');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new WebGPUUnavailableError('WebGPU is not available: requestAdapter() returned null');
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) requiredLimits[k] = adapter.limits[k];
  const requiredFeatures: GPUFeatureName[] = wantF16 && adapter.features.has('shader-f16') ? ['shader-f16'] : [];
  try {
    return { device: await adapter.requestDevice({ label: 'c2c.fuser', requiredLimits, requiredFeatures }), owned: true };
  } catch (e) {
    throw new WebGPUUnavailableError(`requestDevice failed: ${(e as Error).message}`, {}, { cause: e });
  }
}

/** Watches `device.lost` once; `info` is set when it resolves. */
export class LossWatch {
  info: GPUDeviceLostInfo | undefined;
  readonly lost: Promise<GPUDeviceLostInfo>;

  constructor(device: GPUDevice) {
    this.lost = device.lost.then((info) => {
      this.info = info;
      return info;
    });
  }

  /** Resolves true if the device is (or within `ms` becomes) lost; lets a just-fired loss settle first. */
  async settle(ms: number): Promise<boolean> {
    if (this.info) return true;
    let timer: Parameters<typeof clearTimeout>[0];
    const r = await Promise.race([this.lost.then(() => true), new Promise<boolean>((res) => (timer = setTimeout(() => res(false), ms)))]);
    clearTimeout(timer);
    return r;
  }
}

/** The typed error for what a submission's error scopes caught (undefined when they caught nothing). */
export function scopeFailure(errors: GPUError[]): MemoryBudgetError | InvalidInputError | undefined {
  if (!errors.length) return undefined;
  const msg = errors.map((e) => e.message).join('; ');
  return errors.some((e) => e.constructor?.name === 'GPUOutOfMemoryError' || /out of memory/i.test(e.message))
    ? new MemoryBudgetError(`GPU out of memory while fusing: ${msg}`)
    : new InvalidInputError(`WebGPU rejected the fusion commands (buffers from another device or destroyed?): ${msg}`);
}
