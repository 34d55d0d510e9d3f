/**
 * Main-thread side of one model worker: a HostApi that forwards to the worker through comlink, passes
 * callbacks as comlink proxies, transfers KV buffers instead of copying them, and turns a worker crash
 * (uncaught error, or terminate()) into WorkerCrashedError for every pending and later call.
 */
import { proxy, releaseProxy, transfer, wrap, type Remote } from 'comlink';
import { DeviceLostError, WorkerCrashedError } from '../errors';
import { kvTransferables } from '../kv/convert';
import type { HostApi, HostTokenEvent, ModelRole, RawProgressEvent, WireHostApi } from '../types';
import { installTransferHandlers } from './transfer';

export class RemoteHost implements HostApi {
  private readonly remote: Remote<HostApi>;
  private readonly wire: Remote<WireHostApi>;
  private crashError: WorkerCrashedError | null = null;
  private readonly crashed: Promise<never>;
  private rejectCrash!: (e: WorkerCrashedError) => void;

  constructor(
    readonly worker: Worker,
    readonly label: string,
  ) {
    installTransferHandlers();
    this.remote = wrap<HostApi>(worker);
    this.wire = this.remote as unknown as Remote<WireHostApi>;
    this.crashed = new Promise<never>((_, reject) => (this.rejectCrash = reject));
    this.crashed.catch(() => undefined); // observed through guard()
    worker.addEventListener('error', (e) => this.crash(`the ${label} worker crashed: ${e.message || 'uncaught error'}`));
    worker.addEventListener('messageerror', () => this.crash(`the ${label} worker sent a message that could not be decoded`));
  }

  /** Set once a call failed with DeviceLostError: this worker's GPU device is gone for good. */
  private deviceLost = false;

  get isCrashed(): boolean {
    return this.crashError !== null;
  }

  /** The worker cannot serve more requests (crashed, disposed, or its GPU device was lost): spawn a new one. */
  get needsRespawn(): boolean {
    return this.crashError !== null || this.deviceLost;
  }

  /** Terminates the worker and fails every pending call (also the test hook for a crashing worker). */
  crash(message = `the ${this.label} worker was terminated`): void {
    if (this.crashError) return;
    this.crashError = new WorkerCrashedError(message, { worker: this.label });
    this.worker.terminate();
    this.rejectCrash(this.crashError);
  }

  private guard<T>(p: Promise<T>): Promise<T> {
    if (this.crashError) return Promise.reject(this.crashError);
    return Promise.race([p, this.crashed]).catch((e) => {
      if (e instanceof DeviceLostError) this.deviceLost = true;
      throw e;
    });
  }

  init: HostApi['init'] = (init) => this.guard(this.remote.init(init));
  loadModel: HostApi['loadModel'] = (role, source, onProgress, signal) =>
    this.guard(this.remote.loadModel(role, source, onProgress ? proxy((e: RawProgressEvent) => onProgress(e)) : undefined, signal));
  loadFuser: HostApi['loadFuser'] = (req, onProgress, signal) =>
    this.guard(this.remote.loadFuser(req, onProgress ? proxy((e: RawProgressEvent) => onProgress(e)) : undefined, signal));
  encodeChat: HostApi['encodeChat'] = (role, messages) => this.guard(this.remote.encodeChat(role, messages));
  decode: HostApi['decode'] = (role, ids) => this.guard(this.remote.decode(role, ids));
  tokenizerOps: HostApi['tokenizerOps'] = (role, op) => this.guard(this.remote.tokenizerOps(role, op));
  // comlink applies transfer handlers to top-level arguments only: signals travel as a trailing argument
  // (the worker side, WorkerHost, folds them back into the request).
  prefill: HostApi['prefill'] = (role, { signal, ...req }) => this.guard(this.wire.prefill(role, req, signal));
  fuse: HostApi['fuse'] = ({ signal, ...req }) => {
    // The sharer KV came from another worker: move its buffers on instead of cloning them.
    const bufs = 'kv' in req.sharer ? kvTransferables(req.sharer.kv) : [];
    return this.guard(this.wire.fuse(transfer(req, bufs), signal));
  };
  // The worker releases the callback proxy when the call ends (workers/model.worker.ts).
  generate: HostApi['generate'] = (role: ModelRole, { signal, ...req }, onToken) =>
    this.guard(this.wire.generate(role, req, onToken ? proxy((e: HostTokenEvent) => onToken(e)) : undefined, signal));
  release: HostApi['release'] = (handle) => this.guard(this.remote.release(handle));
  destroyDevice: HostApi['destroyDevice'] = () => this.guard(this.remote.destroyDevice());
  dispose: HostApi['dispose'] = async () => {
    if (!this.crashError) {
      await Promise.race([this.remote.dispose(), new Promise((r) => setTimeout(r, 2000))]).catch(() => undefined);
      this.remote[releaseProxy]();
      this.worker.terminate();
      this.crashError = new WorkerCrashedError(`the ${this.label} worker was disposed`, { worker: this.label });
    }
  };
}
