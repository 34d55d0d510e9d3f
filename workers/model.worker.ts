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
  FuseRequest, FuserLoadRequest, GenerateRequest, HostInit, HostTokenEvent, ModelRole, ModelSource, PrefillRequest, RawProgressEvent,
} from '../src/types';
import { kvTransferables } from '../src/kv/convert';
import { installTransferHandlers } from '../src/hosts/transfer';
import { DeviceWatch } from '../src/hosts/device-watch';

installTransferHandlers();

type MaybeRemote = { [releaseProxy]?: () => void };
const release = (f: unknown) => (f as MaybeRemote | undefined)?.[releaseProxy]?.();

class WorkerHost extends ModelHost {
  /** Device loss of this worker's GPUDevice → DeviceLostError for the call in flight and every later one. */
  private watch = new DeviceWatch(undefined);

  override async init(init: HostInit) {
    await super.init(init);
    this.watch = new DeviceWatch(this.gpuDevice);
  }
  override async prefill(role: ModelRole, req: PrefillRequest, signal?: AbortSignal) {
    const r = await this.watch.guard(() => super.prefill(role, { ...req, signal: signal ?? req.signal }));
    return r.kv ? transfer(r, kvTransferables(r.kv)) : r;
  }
  override async fuse(req: FuseRequest, signal?: AbortSignal) {
    return this.watch.guard(() => super.fuse({ ...req, signal: signal ?? req.signal }));
  }
  override async generate(role: ModelRole, req: GenerateRequest, onToken?: (e: HostTokenEvent) => void, signal?: AbortSignal) {
    try {
      return await this.watch.guard(() => super.generate(role, { ...req, signal: signal ?? req.signal }, onToken));
    } finally {
      release(onToken);
    }
  }
  override async loadFuser(req: FuserLoadRequest, onProgress?: (e: RawProgressEvent) => void, signal?: AbortSignal) {
    try {
      return await this.watch.guard(() => super.loadFuser(req, onProgress, signal));
    } finally {
      release(onProgress);
    }
  }
  override async loadModel(role: ModelRole, source: ModelSource, onProgress?: (e: RawProgressEvent) => void, signal?: AbortSignal) {
    try {
      return await this.watch.guard(() => super.loadModel(role, source, onProgress, signal));
    } finally {
      release(onProgress);
    }
  }
}

/** Exported for the test build of this worker (test/browser-engine/instrumented.worker.ts reads its KV handle count). */
export const host = new WorkerHost(browserPlatform());
expose(host);
