/**
 * Browser entry: `createC2CEngine` runs the models in module Web Workers. Topology 'workers' (default): one
 * worker per model, the fuser in the receiver's worker, the sharer KV crossing as transferable buffers.
 * Topology 'single': both models and the fuser in one worker on one GPUDevice. A crashed worker fails its
 * request with WorkerCrashedError, a lost GPU device with DeviceLostError; the next request (or
 * `engine.reload()`) spawns fresh workers and reloads the pair, on a new GPUDevice.
 */
import { assembleEngine, fuserRequest, loadPair } from './assemble';
import type { HostApi, HostInit, ModelRole, C2CEngine, EngineOptions } from '../types';
import { RemoteHost } from '../hosts/remote';

type Hosts = { sharer: HostApi; receiver: HostApi };

function spawnWorker(label: string): RemoteHost {
  const worker = new Worker(new URL('../../workers/model.worker.ts', import.meta.url), { type: 'module', name: `c2c-${label}` });
  return new RemoteHost(worker, label);
}

function absolute(url: string): string {
  return new URL(url, globalThis.location.href).href;
}

/**
 * Same-origin folder as an absolute path ('/models/'): transformers.js 4.3 only probes local files whose
 * path is not an http(s) URL, and workers resolve relative paths against their own script URL.
 */
function originPath(url: string): string {
  const u = new URL(url, globalThis.location.href);
  const p = u.origin === globalThis.location.origin ? u.pathname : u.href;
  return p.endsWith('/') ? p : `${p}/`;
}

export async function createC2CEngine(opts: EngineOptions): Promise<C2CEngine> {
  const topology = opts.topology ?? 'workers';
  const init: HostInit = {
    device: opts.device ?? 'auto',
    allowRemoteModels: opts.allowRemoteModels ?? false,
    shareDevice: topology === 'single',
    topology,
    cpuFuser: opts.cpuFuser,
    cache: opts.cache ?? opts.allowRemoteModels ?? false,
    remoteHost: opts.remoteHost,
  };
  const fuser = fuserRequest(opts, absolute);
  // Workers resolve relative URLs against their own script: hand them absolute ones.
  const resolved: EngineOptions = {
    ...opts,
    sharer: { ...opts.sharer, localPath: originPath(opts.sharer.localPath ?? '/models/') },
    receiver: { ...opts.receiver, localPath: originPath(opts.receiver.localPath ?? '/models/') },
  };

  let remotes: RemoteHost[] = [];
  let hosts: Hosts | null = null;
  let loaded = false;

  const spawn = async (): Promise<Hosts> => {
    if (topology === 'single') {
      const one = spawnWorker('models');
      remotes = [one];
      hosts = { sharer: one, receiver: one };
    } else {
      const s = spawnWorker('sharer');
      const r = spawnWorker('receiver');
      remotes = [s, r];
      hosts = { sharer: s, receiver: r };
    }
    await Promise.all(remotes.map((h) => h.init(init)));
    return hosts;
  };

  let forceRespawn = false;
  const provider = async (): Promise<Hosts> => {
    // A crashed worker, or one whose GPU device was lost, is replaced: the pair is reloaded into new workers.
    if (hosts && !forceRespawn && !remotes.some((r) => r.needsRespawn)) return hosts;
    forceRespawn = false;
    await Promise.all(remotes.map((r) => r.dispose()));
    const fresh = await spawn();
    // After a crash the pair is reloaded into the new workers (the first load is done by assembleEngine).
    if (loaded) await loadPair(fresh, { ...resolved, signal: undefined, onProgress: undefined }, fuser);
    return fresh;
  };

  const engine = await assembleEngine({
    opts: resolved,
    hosts: provider,
    topology,
    fuser,
    reload: async () => {
      forceRespawn = true;
      await provider();
    },
    dispose: async () => {
      await Promise.all(remotes.map((r) => r.dispose()));
      remotes = [];
      hosts = null;
    },
  });
  loaded = true;
  // Test hooks: a crash of one worker (the same path as an uncaught error in it); a lost GPU device in one.
  Object.defineProperty(engine, '__crashWorkerForTests', {
    value: (role: ModelRole) => {
      const h = hosts?.[role];
      if (h instanceof RemoteHost) h.crash(`the ${role} worker crashed (test hook)`);
    },
  });
  Object.defineProperty(engine, '__loseDeviceForTests', { value: (role: ModelRole) => hosts?.[role].destroyDevice() });
  return engine;
}
