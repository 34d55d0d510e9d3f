/**
 * Node entry: the same C2CEngine API in-process, on onnxruntime-node (CPU, via transformers.js device 'cpu')
 * with the ONNX CPU fuser on onnxruntime-node (or the plain-JS reference: `cpuFuser: 'reference'`). Model ids
 * resolve under `ModelSource.localPath` (default `./models`); the fuser option is a directory holding
 * fuser.json + safetensors.
 */
import { resolve } from 'node:path';
import { assembleEngine, loadPair } from './engine/assemble';
import { ModelHost } from './hosts/model-host';
import { nodePlatform } from './hosts/node-platform';
import type { C2CEngine, EngineOptions } from './types';

export * from './index';
export { loadFuserFromDirectory } from './fuser/format/node-io';
export { nodePlatform } from './hosts/node-platform';
export { embeddedPair, embeddedPairDir } from './embedded-pair';

/** Creates the engine in this process: both models and the fuser share one ModelHost. */
export async function createNodeC2CEngine(opts: EngineOptions): Promise<C2CEngine> {
  const newHost = async () => {
    const h = new ModelHost(nodePlatform());
    await h.init({ device: opts.device ?? 'cpu', allowRemoteModels: opts.allowRemoteModels ?? false, shareDevice: false, topology: 'node', cpuFuser: opts.cpuFuser });
    return h;
  };
  let host = await newHost();
  const fuserLocation = resolve(opts.fuser);
  return assembleEngine({
    opts,
    hosts: async () => ({ sharer: host, receiver: host }),
    topology: 'node',
    fuserLocation,
    reload: async () => {
      const next = await newHost();
      await loadPair({ sharer: next, receiver: next }, { ...opts, signal: undefined, onProgress: undefined }, fuserLocation);
      const old = host;
      host = next;
      await old.dispose();
    },
    dispose: () => host.dispose(),
  });
}
