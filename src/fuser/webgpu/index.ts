/**
 * WebGPU backend of the C2C fuser: `createWebGPUFuser` plus the GPU-resident KV types. Kernels live one
 * program per file (`gemm.ts`, `row-rms.ts`); `path-plan.ts` sequences them; `fuser.ts` owns the device work.
 */
export { createWebGPUFuser, type WebGPUFuser, type WebGPUFuserOptions } from './fuser';
export type { GpuKV, GpuLayerKV } from './validate';
export type { KernelDType, WeightDType } from './wgsl';
