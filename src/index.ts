/**
 * c2c-web public API: re-exports only. See README.md for usage and docs/ for formats.
 */
export * from './errors';
export type { KVTensor, LayerKV, KVCache } from './types';
export { kvTensor } from './kv/ops';
export type { FuserConfig, FuserDType, FuserWeights, Fuser, FuseOptions, LayerProjector, ProjectorPathParams, FFNBlockParams, LinearParams, ModelKVDims } from './types';
export { terminalLayerMap } from './fuser/layer-map';
export { parseSafetensors, tensorToFloat32, writeSafetensors } from './fuser/safetensors';
export type { SafetensorsFile, SafetensorsTensor, SafetensorsDType, TensorToWrite } from './fuser/safetensors';
export { loadFuserWeights, expectedFuserTensors } from './fuser/format/validate';
export { loadFuserFromUrl } from './fuser/format/fetch';
export { serializeFuser } from './fuser/format/serialise';
export { parseFuserJson } from './fuser/format/manifest';
export type { FuserManifest } from './fuser/format/manifest';
export type { LoadFuserOptions } from './fuser/format/validate';
export { quantizeFuserWeights, quantizeInt8, dequantizeInt8 } from './fuser/quantize';
export { fuserGpuWeightBytes } from './fuser/weight-bytes';
export type { FuserWeightBytes, GpuWeightDType } from './fuser/weight-bytes';
export * from './types';
export { HUB_PRESETS, findPreset, decoderParams, projectorParams, presetFuserParams, presetFuserUrl, presetEngineOptions } from './presets';
export type { PairPreset, PresetModel, ModelArch, FuserSource } from './presets';
export { estimateMemory, checkMemoryBudget, maxContextThatFits, estimateKVBytes } from './memory';
export type { MemoryEstimate, MemoryOptions, DeviceMemoryLimits, ModelDType, FuserWeightDType, KVDType } from './memory';
export { createReferenceFuser, fuseCache, fuseLayerPath } from './fuser/reference';
export { createOnnxFuser } from './fuser/onnx';
export type { OnnxFuserOptions, OrtModuleLike } from './fuser/onnx';
export { randomFuserWeights } from './fuser/random-weights';
export { createC2CEngine } from './engine/browser';
export type { RelayTemplate } from './types';
export { DEFAULT_RELAY_TEMPLATE } from './engine/relay';
export { loadOfficialCheckpoint, loadOfficialCheckpointWithInfo, urlCheckpointReader, readTorchStateDict } from './checkpoints';
export { createWebGPUFuser } from './fuser/webgpu';
export type { WebGPUFuser, WebGPUFuserOptions, GpuKV, GpuLayerKV, KernelDType } from './fuser/webgpu';
