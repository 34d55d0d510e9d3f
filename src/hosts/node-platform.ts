/**
 * HostPlatform for Node: onnxruntime-node's CPU EP through transformers.js (device 'cpu'), models resolved under
 * a local folder, the fuser (either format) from a directory or a URL (cached under transformers.js's env.cacheDir),
 * the CPU fuser as an ONNX graph on the same onnxruntime-node.
 */
import { resolve } from 'node:path';
import { env } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import type { HostPlatform } from '../types';
import { loadFuserSource } from '../fuser-source';
import { nodeFuserCache, nodeFuserReader } from '../fuser-source/node';
import { createOnnxFuser, type OrtModuleLike } from '../fuser/onnx/index';
import { createReferenceFuser } from '../fuser/reference';
import { NODE_SESSION_OPTIONS } from '../util/ort-node-options';

const DEFAULT_REMOTE_HOST = env.remoteHost;

export function nodePlatform(): HostPlatform {
  let cpuFuser: 'onnx' | 'reference' = 'onnx';
  let cache = false;
  return {
    async resolveDevice(init) {
      cpuFuser = init.cpuFuser ?? 'onnx';
      cache = init.cache ?? init.allowRemoteModels;
      const asked = init.device;
      // Node has one backend here: onnxruntime-node's CPU EP (its Dawn build rejects Mesa, platform notes §6).
      const fallbackReason = asked === 'webgpu' || asked === 'wasm' ? `device '${asked}' is not available in Node; using onnxruntime-node CPU` : undefined;
      return { backend: 'cpu', shaderF16: false, fallbackReason, sessionOptions: { ...NODE_SESSION_OPTIONS } };
    },
    configureEnv(source, init) {
      env.allowRemoteModels = init.allowRemoteModels;
      env.remoteHost = init.remoteHost ?? DEFAULT_REMOTE_HOST;
      // Remote model files always go to env.cacheDir: transformers.js hands onnxruntime-node a file path.
      env.allowLocalModels = true;
      env.localModelPath = resolve(source.localPath ?? 'models') + '/';
    },
    loadFuserWeights: (req, o) => {
      const reader = nodeFuserReader(req.url, { cache: cache ? nodeFuserCache(env) : undefined, signal: o.signal, onProgress: o.onProgress });
      return loadFuserSource(reader, req, o.signal);
    },
    async createFuser(weights) {
      if (cpuFuser === 'reference') return { fuser: createReferenceFuser(weights) };
      // The same onnxruntime-node instance transformers.js runs the models on (a dependency: no fallback).
      return { fuser: await createOnnxFuser(weights, { ort: ort as unknown as OrtModuleLike }) };
    },
  };
}
