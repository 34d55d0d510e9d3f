/**
 * Node entry: the same C2CEngine API in-process, on onnxruntime-node (CPU, via transformers.js device 'cpu')
 * with the ONNX CPU fuser on onnxruntime-node (or the plain-JS reference: `cpuFuser: 'reference'`). Model ids resolve under `ModelSource.localPath` (default `./models`);
 * the fuser option is a directory holding fuser.json + safetensors.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { env } from '@huggingface/transformers';
import { ModelLoadError } from './errors';
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

const EMBEDDED_PAIR = 'c2c-tiny';

/**
 * Folder of the tiny pair shipped in the package (`models/c2c-tiny`: receiver, sharer, fuser, pair.json),
 * resolved from this module's own location (src/ or dist-lib/, both one level below the package root), never the cwd.
 */
export function embeddedPairDir(): string {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'models', EMBEDDED_PAIR);
  if (!existsSync(join(dir, 'pair.json'))) {
    const why = `no pair.json in ${dir} (a broken install or a trimmed package)`;
    throw new ModelLoadError(`the embedded pair is missing: ${why}`, { field: 'embeddedPair' });
  }
  return dir;
}

/** EngineOptions for the shipped tiny pair: `createNodeC2CEngine({ ...embeddedPair(), cpuFuser: 'reference' })`. */
export function embeddedPair(): EngineOptions {
  const dir = embeddedPairDir();
  const pair = JSON.parse(readFileSync(join(dir, 'pair.json'), 'utf8')) as { receiver: string; sharer: string; fuser: string };
  const models = dirname(dir);
  return {
    receiver: { id: `${EMBEDDED_PAIR}/${pair.receiver}`, localPath: models },
    sharer: { id: `${EMBEDDED_PAIR}/${pair.sharer}`, localPath: models },
    fuser: join(dir, pair.fuser),
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
