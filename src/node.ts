/**
 * Node entry: the same C2CEngine API in-process, on onnxruntime-node (CPU, via transformers.js device 'cpu')
 * with the ONNX CPU fuser on onnxruntime-node (or the plain-JS reference: `cpuFuser: 'reference'`). Model ids
 * resolve under `ModelSource.localPath` (default `./models`); the fuser option is a directory holding
 * fuser.json + safetensors.
 */
import { resolve } from 'node:path';
import { assembleEngine } from './engine/assemble';
import { ModelHost } from './hosts/model-host';
import { nodePlatform } from './hosts/node-platform';
import type { C2CEngine, EngineOptions } from './types';

export * from './index';
export { loadFuserFromDirectory } from './fuser/format/node-io';
export { nodePlatform } from './hosts/node-platform';

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
