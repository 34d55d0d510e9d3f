/**
 * Loads a pair + fuser into given hosts and builds the Engine: shared by the browser (workers / single) and
 * Node entry points. Checks that the fuser fits the pair (layers, KV heads, head dims) before any request,
 * reports aggregated progress, and builds the device report (with any fallback reason, the models' and the fuser's).
 */
import { ShapeMismatchError, throwIfAborted } from '../errors';
import type { FuserConfig, ModelInfo, HostApi, LoadedFuser, LoadedModel, ModelRole, C2CEngine, DeviceReport, EngineOptions } from '../types';
import { createTokenAligner } from '../align/token-aligner';
import { Engine } from './engine';
import { pairModelId } from './openai';
import { ProgressAggregator } from './progress';

export interface AssembleInput {
  opts: EngineOptions;
  /** Hosts for each role (the same object for single/node topologies). */
  hosts(): Promise<{ sharer: HostApi; receiver: HostApi }>;
  /** Reloads everything into fresh hosts after a crash: called by `hosts()` implementations. */
  topology: DeviceReport['topology'];
  /** Where the fuser location points (URL or directory), already resolved. */
  fuserLocation: string;
  dispose(): Promise<void>;
}

/** Throws ShapeMismatchError naming the first dimension where the fuser and a model disagree. */
export function checkFuserFitsPair(cfg: FuserConfig, info: { sharer: ModelInfo; receiver: ModelInfo }): void {
  for (const role of ['receiver', 'sharer'] as const) {
    const want = cfg[role];
    const got = info[role];
    const pairs: [string, number, number][] = [
      ['numLayers', want.numLayers, got.numLayers],
      ['kvHeads', want.kvHeads, got.kvHeads],
      ['headDim', want.headDim, got.headDim],
    ];
    for (const [field, w, g] of pairs) {
      if (w !== g) {
        throw new ShapeMismatchError(`the fuser expects ${role}.${field} = ${w}, but model "${got.id}" has ${g}`, {
          field: `${role}.${field}`,
          expected: w,
          actual: g,
        });
      }
    }
  }
}

/** Loads both models and the fuser into `hosts` (receiver host gets the fuser); returns what was loaded. */
export async function loadPair(
  hosts: { sharer: HostApi; receiver: HostApi },
  opts: EngineOptions,
  fuserLocation: string,
  progress?: ProgressAggregator,
): Promise<{ sharer: LoadedModel; receiver: LoadedModel; fuser: LoadedFuser }> {
  const signal = opts.signal;
  const onProgress = progress ? (e: Parameters<ProgressAggregator['report']>[0]) => progress.report(e) : undefined;
  const load = (role: ModelRole) => hosts[role].loadModel(role, opts[role], onProgress, signal);
  // Different hosts load concurrently; one host serialises its own loads.
  const [sharer, receiver, fuser] = await Promise.all([load('sharer'), load('receiver'), hosts.receiver.loadFuser(fuserLocation, signal)]);
  progress?.report({ role: 'fuser', phase: 'warmup', loaded: 1, total: 1 });
  throwIfAborted(signal);
  checkFuserFitsPair(fuser.config, { sharer: sharer.info, receiver: receiver.info });
  return { sharer, receiver, fuser };
}

export function deviceReport(
  loaded: { sharer: LoadedModel; receiver: LoadedModel; fuser: Omit<LoadedFuser, 'config'> },
  topology: DeviceReport['topology'],
): DeviceReport {
  const r = loaded.receiver;
  const reasons = [...new Set([loaded.sharer.fallbackReason, r.fallbackReason].filter((x): x is string => !!x))];
  return {
    backend: r.backend,
    fuserBackend: loaded.fuser.backend,
    adapter: r.adapter,
    shaderF16: r.shaderF16,
    fallbackReason: reasons.length ? reasons.join('; ') : undefined,
    fuserFallbackReason: loaded.fuser.fallbackReason,
    topology,
  };
}

export async function assembleEngine(input: AssembleInput): Promise<C2CEngine> {
  const { opts } = input;
  // compile + warm-up are counted per model and once for the fuser.
  const progress = opts.onProgress ? new ProgressAggregator(3, opts.onProgress) : undefined;
  throwIfAborted(opts.signal);
  const hosts = await input.hosts();
  let loaded;
  try {
    loaded = await loadPair(hosts, opts, input.fuserLocation, progress);
  } catch (e) {
    await input.dispose().catch(() => undefined);
    throw e;
  }
  progress?.finish();
  const info = { sharer: loaded.sharer.info, receiver: loaded.receiver.info };
  const aligner = loaded.fuser.config.alignment?.enabled
    ? createTokenAligner(input.hosts, loaded.fuser.config.alignment.strategy)
    : undefined;
  return new Engine({
    hosts: input.hosts,
    device: deviceReport(loaded, input.topology),
    modelId: pairModelId(opts),
    info,
    fuser: loaded.fuser.config,
    relay: opts.relay,
    aligner,
    dispose: input.dispose,
  });
}
