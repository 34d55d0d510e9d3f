/**
 * Loads a pair + fuser into given hosts and builds the Engine: shared by the browser (workers / single) and
 * Node entry points. Checks that the fuser fits the pair (layers, KV heads, head dims) before any request,
 * reports aggregated progress, and builds the device report (with any fallback reason, the models' and the fuser's).
 */
import { InvalidInputError, ShapeMismatchError, throwIfAborted } from '../errors';
import type {
  FuserConfig, FuserLoadRequest, FuserLoadResult, ModelInfo, HostApi, LoadedModel, ModelRole, C2CEngine, DeviceReport, EngineOptions,
} from '../types';
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
  /** The fuser to load, its location already resolved (absolute URL, or directory in Node). */
  fuser: FuserLoadRequest;
  /** Replaces the hosts with fresh ones and loads the pair into them again (engine.reload()). */
  reload(): Promise<void>;
  dispose(): Promise<void>;
}

const FORMATS = new Set(['auto', 'c2c-web', 'official']);

/** `EngineOptions.fuser` (a string or `{ url, format, sharerNumLayers }`) as the host's request, URL resolved. */
export function fuserRequest(opts: EngineOptions, resolveUrl: (location: string) => string): FuserLoadRequest {
  const loc = typeof opts.fuser === 'string' ? { url: opts.fuser } : opts.fuser;
  if (!loc || typeof loc.url !== 'string' || loc.url === '') {
    throw new InvalidInputError('fuser must be a folder URL/directory or { url, format? }', { field: 'fuser', actual: opts.fuser });
  }
  if (loc.format !== undefined && !FORMATS.has(loc.format)) {
    throw new InvalidInputError(`fuser.format must be 'auto', 'c2c-web' or 'official', got ${JSON.stringify(loc.format)}`, { field: 'fuser.format' });
  }
  const n = loc.sharerNumLayers;
  if (n !== undefined && !(Number.isInteger(n) && n > 0)) {
    throw new InvalidInputError(`fuser.sharerNumLayers must be a positive integer, got ${n}`, { field: 'fuser.sharerNumLayers' });
  }
  const b = opts.memoryBudgetBytes;
  if (b !== undefined && !(typeof b === 'number' && b > 0)) {
    throw new InvalidInputError(`memoryBudgetBytes must be a positive number, got ${b}`, { field: 'memoryBudgetBytes' });
  }
  return { ...loc, url: resolveUrl(loc.url), ...(b !== undefined ? { memoryBudgetBytes: b } : {}) };
}

/** Throws ShapeMismatchError naming the first dimension where the fuser and a model disagree. */
export function checkFuserFitsPair(
  cfg: FuserConfig,
  info: { sharer: ModelInfo; receiver: ModelInfo },
  sharerLayersFrom?: FuserLoadResult['sharerLayersFrom'],
): void {
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
        // The official layout stores no sharer depth: say how to give it.
        const hint = role === 'sharer' && field === 'numLayers' && sharerLayersFrom === 'layer-map'
          ? ` (the official checkpoint does not store the sharer's depth: ${w} was inferred from its layer map; `
            + `pass fuser: { url, sharerNumLayers: ${g} })`
          : '';
        throw new ShapeMismatchError(`the fuser expects ${role}.${field} = ${w}, but model "${got.id}" has ${g}${hint}`, {
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
  fuserReq: FuserLoadRequest,
  progress?: ProgressAggregator,
): Promise<{ sharer: LoadedModel; receiver: LoadedModel; fuser: FuserLoadResult }> {
  const signal = opts.signal;
  const onProgress = progress ? (e: Parameters<ProgressAggregator['report']>[0]) => progress.report(e) : undefined;
  const load = (role: ModelRole) => hosts[role].loadModel(role, opts[role], onProgress, signal);
  // Different hosts load concurrently; one host serialises its own loads.
  const [sharer, receiver, fuser] = await Promise.all([load('sharer'), load('receiver'), hosts.receiver.loadFuser(fuserReq, onProgress, signal)]);
  progress?.report({ role: 'fuser', phase: 'warmup', loaded: 1, total: 1 });
  throwIfAborted(signal);
  checkFuserFitsPair(fuser.config, { sharer: sharer.info, receiver: receiver.info }, fuser.sharerLayersFrom);
  return { sharer, receiver, fuser };
}

/** Prefix reuse unless switched off, and off by default where it would give up the zero-copy GPU path. */
export function prefixReuseFor(opts: Pick<EngineOptions, 'prefixReuse'>, topology: DeviceReport['topology'], backend: DeviceReport['backend']): boolean {
  return opts.prefixReuse ?? !(topology === 'single' && backend === 'webgpu');
}

export function deviceReport(
  loaded: { sharer: LoadedModel; receiver: LoadedModel; fuser: Pick<FuserLoadResult, 'backend' | 'format' | 'fallbackReason'> },
  topology: DeviceReport['topology'],
  prefixReuse = true,
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
    prefixReuse,
    fuserFormat: loaded.fuser.format,
    models: {
      receiver: { modelDType: r.modelDType, kvDType: r.kvDType },
      sharer: { modelDType: loaded.sharer.modelDType, kvDType: loaded.sharer.kvDType },
    },
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
    loaded = await loadPair(hosts, opts, input.fuser, progress);
  } catch (e) {
    await input.dispose().catch(() => undefined);
    throw e;
  }
  progress?.finish();
  const info = { sharer: loaded.sharer.info, receiver: loaded.receiver.info };
  const aligner = loaded.fuser.config.alignment?.enabled
    ? createTokenAligner(input.hosts, loaded.fuser.config.alignment.strategy)
    : undefined;
  const prefixReuse = prefixReuseFor(opts, input.topology, loaded.receiver.backend);
  return new Engine({
    hosts: input.hosts,
    device: deviceReport(loaded, input.topology, prefixReuse),
    prefixReuse,
    modelId: pairModelId(opts),
    info,
    fuser: loaded.fuser.config,
    relay: opts.relay,
    aligner,
    reload: input.reload,
    dispose: input.dispose,
  });
}
