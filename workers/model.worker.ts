/**
 * Model worker: one ModelHost exposed through comlink. In the 'workers' topology it holds one model (the
 * receiver's worker also holds the fuser); in 'single' it holds both models and the fuser on one GPUDevice.
 * Calls arrive in the WireHostApi shape (signals as trailing arguments); KV returned by prefill is
 * transferred, not copied; callback proxies are released after each call.
 */
import { expose, releaseProxy, transfer } from 'comlink';
import { browserPlatform } from '../src/hosts/browser-platform';
import { ModelHost } from '../src/hosts/model-host';
import type {
  FuseRequest, FuserLoadRequest, GenerateRequest, HostTokenEvent, ModelRole, PrefillRequest, RawProgressEvent, ModelSource,
} from '../src/types';
import { kvTransferables } from '../src/kv/convert';
import { installTransferHandlers } from '../src/hosts/transfer';

installTransferHandlers();

type MaybeRemote = { [releaseProxy]?: () => void };
const release = (f: unknown) => (f as MaybeRemote | undefined)?.[releaseProxy]?.();

class WorkerHost extends ModelHost {
  override async prefill(role: ModelRole, req: PrefillRequest, signal?: AbortSignal) {
    const r = await super.prefill(role, { ...req, signal: signal ?? req.signal });
    return r.kv ? transfer(r, kvTransferables(r.kv)) : r;
  }
  override async fuse(req: FuseRequest, signal?: AbortSignal) {
    return super.fuse({ ...req, signal: signal ?? req.signal });
  }
  override async generate(role: ModelRole, req: GenerateRequest, onToken?: (e: HostTokenEvent) => void, signal?: AbortSignal) {
    try {
      return await super.generate(role, { ...req, signal: signal ?? req.signal }, onToken);
    } finally {
      release(onToken);
    }
  }
  override async loadFuser(req: FuserLoadRequest, onProgress?: (e: RawProgressEvent) => void, signal?: AbortSignal) {
    try {
      return await super.loadFuser(req, onProgress, signal);
    } finally {
      release(onProgress);
    }
  }
  override async loadModel(role: ModelRole, source: ModelSource, onProgress?: (e: RawProgressEvent) => void, signal?: AbortSignal) {
    try {
      return await super.loadModel(role, source, onProgress, signal);
    } finally {
      release(onProgress);
    }
  }
}

expose(new WorkerHost(browserPlatform()));
