/**
 * Node entry: the same C2CEngine API in-process, on onnxruntime-node (CPU, via transformers.js device 'cpu')
 * with the ONNX CPU fuser on onnxruntime-node (or the plain-JS reference: `cpuFuser: 'reference'`). Model ids
 * resolve under `ModelSource.localPath` (default `./models`); the fuser option is a directory or URL of either
 * fuser format (c2c-web fuser.json + safetensors, or an official C2C checkpoint folder).
 */
import { assembleEngine, fuserRequest, loadPair } from './engine/assemble';
import { resolveNodeLocation } from './fuser-source/node';
import { ModelHost } from './hosts/model-host';
import { nodePlatform } from './hosts/node-platform';
import type { C2CEngine, EngineOptions } from './types';

export * from './index';
export { loadFuserFromDirectory, directoryFileReader } from './fuser/format/node-io';
// Node's cache lives on disk: these shadow the browser versions re-exported from ./index.
export { isPairCached, getPairCacheStatus, clearPairCache } from './engine/cache-node';
export { nodeFuserReader } from './fuser-source/node';
export { nodePlatform } from './hosts/node-platform';
export { embeddedPair, embeddedPairDir } from './embedded-pair';

/** Creates the engine in this process: both models and the fuser share one ModelHost. */
export async function createNodeC2CEngine(opts: EngineOptions): Promise<C2CEngine> {
  const fuser = fuserRequest(opts, resolveNodeLocation);
  const allowRemoteModels = opts.allowRemoteModels ?? false;
  const cache = opts.cache ?? allowRemoteModels;
  const newHost = async () => {
    const h = new ModelHost(nodePlatform());
    await h.init({ device: opts.device ?? 'cpu', allowRemoteModels, shareDevice: false, topology: 'node', cpuFuser: opts.cpuFuser, cache,
      remoteHost: opts.remoteHost });
    return h;
  };
  let host = await newHost();
  return assembleEngine({
    opts,
    hosts: async () => ({ sharer: host, receiver: host }),
    topology: 'node',
    fuser,
    reload: async () => {
      const next = await newHost();
      await loadPair({ sharer: next, receiver: next }, { ...opts, signal: undefined, onProgress: undefined }, fuser);
      const old = host;
      host = next;
      await old.dispose();
    },
    dispose: () => host.dispose(),
  });
}
