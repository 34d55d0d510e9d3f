/**
 * Node entry: the same C2CEngine API in-process, on onnxruntime-node (CPU, via transformers.js device 'cpu')
 * with the ONNX CPU fuser on onnxruntime-node (or the plain-JS reference: `cpuFuser: 'reference'`). Model ids resolve under `ModelSource.localPath` (default `./models`);
 * the fuser option is a directory holding fuser.json + safetensors.
 */
import { resolve } from 'node:path';
import { env } from '@huggingface/transformers';
import { assembleEngine } from './engine/assemble';
import { ModelHost, type HostPlatform } from './engine/host';
import type { C2CEngine, EngineOptions } from './engine/types';
import { loadFuserFromDirectory } from './fuser/node-io';
import { createOnnxFuser, type OrtModuleLike } from './fuser/onnx/index';
import { createReferenceFuser } from './fuser/reference';

export * from './index';
export { loadFuserFromDirectory } from './fuser/node-io';

export function nodePlatform(): HostPlatform {
  let cpuFuser: 'onnx' | 'reference' = 'onnx';
  return {
    async resolveDevice(init) {
      cpuFuser = init.cpuFuser ?? 'onnx';
      const asked = init.device;
      // Node has one backend here: onnxruntime-node's CPU EP (its Dawn build rejects Mesa, platform notes §6).
      const fallbackReason = asked === 'webgpu' || asked === 'wasm' ? `device '${asked}' is not available in Node; using onnxruntime-node CPU` : undefined;
      return { backend: 'cpu', shaderF16: false, fallbackReason };
    },
    configureEnv(source, init) {
      env.allowRemoteModels = init.allowRemoteModels;
      env.allowLocalModels = true;
      env.localModelPath = resolve(source.localPath ?? 'models') + '/';
    },
    loadFuserWeights: (dir) => loadFuserFromDirectory(dir),
    async createFuser(weights) {
      if (cpuFuser === 'reference') return createReferenceFuser(weights);
      let ort: OrtModuleLike;
      try {
        // The same onnxruntime-node instance transformers.js runs the models on.
        ort = (await import('onnxruntime-node')) as unknown as OrtModuleLike;
      } catch (e) {
        console.warn(`onnxruntime-node unavailable, using the CPU reference fuser: ${(e as Error).message}`);
        return createReferenceFuser(weights);
      }
      return createOnnxFuser(weights, { ort });
    },
  };
}

/** Creates the engine in this process: both models and the fuser share one ModelHost. */
export async function createNodeC2CEngine(opts: EngineOptions): Promise<C2CEngine> {
  const host = new ModelHost(nodePlatform());
  await host.init({ device: opts.device ?? 'cpu', allowRemoteModels: opts.allowRemoteModels ?? false, shareDevice: false, topology: 'node', cpuFuser: opts.cpuFuser });
  return assembleEngine({
    opts,
    hosts: async () => ({ sharer: host, receiver: host }),
    topology: 'node',
    fuserLocation: resolve(opts.fuser),
    dispose: () => host.dispose(),
  });
}
