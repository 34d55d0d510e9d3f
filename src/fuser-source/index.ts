/**
 * One fuser source for both formats: detects the folder's layout (fuser.json → c2c-web; config.json +
 * final/projector_config.json → the official C2C layout), loads it through one FuserFileReader (so caching,
 * byte progress and integrity checks are the same for both), refuses before the weight downloads what a
 * memory budget cannot hold, and reports which format loaded and where the sharer depth came from.
 */
import { FuserFormatError, throwIfAborted } from '../errors';
import { loadOfficialCheckpointWithInfo, parseLayerMap } from '../checkpoints/official';
import { readManifest } from '../fuser/format/manifest';
import { projectorFuserDims } from '../checkpoints/projector-keys';
import type { FuserFileReader } from '../fuser/format/files';
import { loadFuserFromReader } from '../fuser/format/fetch';
import { checkFuserLoadBudget, fuserCpuWeightBytes } from '../memory';
import type { FuserDims } from '../fuser/shapes';
import type { FuserFormat, FuserLoadRequest, LoadedFuser } from '../types';

/** What detection looks for, in order. */
export const C2C_WEB_MARKER = 'fuser.json';
export const OFFICIAL_MARKERS = ['config.json', 'final/projector_config.json'] as const;


/**
 * The folder's format. Cache first (a folder loaded before is recognised offline, with no request), then
 * the network: a fuser.json whose `format` is "c2c-fuser", else final/projector_config.json as a JSON object
 * plus a config.json (a file that is something else, like a web server's index page for a missing path, counts
 * as absent). `read`: the marker files it read (the loader reuses them).
 */
export async function detectFuserFormat(reader: FuserFileReader): Promise<{ format: FuserFormat; read: Map<string, Uint8Array> }> {
  const read = new Map<string, Uint8Array>();
  if (await reader.isCached(C2C_WEB_MARKER)) return { format: 'c2c-web', read };
  const officialCached = await Promise.all(OFFICIAL_MARKERS.map((f) => reader.isCached(f)));
  if (officialCached.every(Boolean)) return { format: 'official', read };
  const manifest = await reader.readOptional(C2C_WEB_MARKER, (b) => jsonObject(b)?.format === 'c2c-fuser');
  if (manifest) return { format: 'c2c-web', read: read.set(C2C_WEB_MARKER, manifest) };
  // The layer map identifies the layout (it must be a JSON object: a server's index page is not); config.json
  // need only exist, its content is the loader's to check (so a damaged one is reported as such).
  const map = await reader.readOptional(OFFICIAL_MARKERS[1], (b) => jsonObject(b) !== undefined);
  if (map) read.set(OFFICIAL_MARKERS[1], map);
  const recipe = map ? await reader.readOptional(OFFICIAL_MARKERS[0]) : null;
  if (recipe) read.set(OFFICIAL_MARKERS[0], recipe);
  if (read.size === OFFICIAL_MARKERS.length) return { format: 'official', read };
  const missing = [map ? OFFICIAL_MARKERS[0] : OFFICIAL_MARKERS[1]];
  throw new FuserFormatError(
    `${reader.location} holds no fuser: looked for a ${C2C_WEB_MARKER} (c2c-web format) and for ${OFFICIAL_MARKERS.join(' + ')} `
      + `(official C2C layout); missing or not JSON: ${[C2C_WEB_MARKER, ...missing].join(', ')}`,
    { field: 'fuser', missing: [C2C_WEB_MARKER, ...missing] },
  );
}

/** Loads the fuser the request points at through `reader` (which the platform built for its location). */
export async function loadFuserSource(reader: FuserFileReader, req: FuserLoadRequest, signal?: AbortSignal): Promise<LoadedFuser> {
  throwIfAborted(signal);
  const asked = req.format ?? 'auto';
  const detected = asked === 'auto' ? await detectFuserFormat(reader) : { format: asked, read: new Map<string, Uint8Array>() };
  reader = withAlreadyRead(reader, detected.read);
  const budget = req.memoryBudgetBytes;
  if (detected.format === 'c2c-web') {
    const weights = await loadFuserFromReader(
      reader,
      {
        signal,
        beforeWeights: (cfg, fileBytes) => {
          if (budget === undefined) return;
          // Without integrity sizes, the file is about the weights at the stored width.
          const raw = fileBytes ?? estimateFileBytes(cfg);
          checkFuserLoadBudget(cfg, { budgetBytes: budget, rawBytes: raw, what: `the fuser at ${reader.location}` });
        },
      },
    );
    return { weights, format: 'c2c-web', files: reader.reports.slice(), sharerLayersFrom: 'fuser.json' };
  }
  const { weights } = await loadOfficialCheckpointWithInfo(reader, {
    signal,
    sharerNumLayers: req.sharerNumLayers,
    beforeWeights: (dims, receiverLayers) => {
      if (budget === undefined) return;
      const fuserDims = { ...projectorFuserDims(dims), receiver: { numLayers: receiverLayers, kvHeads: dims.targetHeads,
        headDim: dims.targetDim } };
      // One projector file is held at a time: one receiver layer's weights at the stored width (≤ f32).
      const oneFile = fuserCpuWeightBytes(fuserDims) / receiverLayers;
      checkFuserLoadBudget(fuserDims, { budgetBytes: budget, rawBytes: oneFile, what: `the official checkpoint at ${reader.location}` });
    },
  });
  return { weights, format: 'official', files: reader.reports.slice(),
    sharerLayersFrom: req.sharerNumLayers !== undefined ? 'option' : 'layer-map' };
}

/** The bytes as a JSON object, or undefined (not UTF-8 JSON, or not an object): what detection accepts as a marker. */
function jsonObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The reader, serving files detection already read from memory (once each), not reading them again. */
function withAlreadyRead(reader: FuserFileReader, read: Map<string, Uint8Array>): FuserFileReader {
  if (read.size === 0) return reader;
  return {
    location: reader.location,
    reports: reader.reports,
    readOptional: (path) => reader.readOptional(path),
    isCached: (path) => reader.isCached(path),
    async read(path, expect) {
      const bytes = read.get(path);
      if (!bytes) return reader.read(path, expect);
      read.delete(path);
      return bytes;
    },
  };
}

/** Bytes of a fuser's weight files at its stored dtype (int8 ≈ 1 byte per element; f32 counts 4). */
function estimateFileBytes(cfg: FuserDims & { dtype: string }): number {
  const perElement = cfg.dtype === 'float32' ? 4 : cfg.dtype === 'int8' ? 1 : 2;
  return (fuserCpuWeightBytes(cfg) / 4) * perElement;
}

/**
 * Which files of the fuser at `reader` are in its cache, without any request: the manifest (fuser.json, or the
 * official projector_config.json) is read from the cache to list them. Nothing cached: `format` undefined.
 */
export async function cachedFuserFiles(reader: FuserFileReader): Promise<{
  format?: FuserFormat; files: { file: string; cached: boolean }[] }> {
  let format: FuserFormat | undefined;
  let files: string[];
  if (await reader.isCached(C2C_WEB_MARKER)) {
    format = 'c2c-web';
    try {
      files = [C2C_WEB_MARKER, ...readManifest(JSON.parse(new TextDecoder().decode(await reader.read(C2C_WEB_MARKER)))).files];
    } catch {
      // A cached fuser.json that does not parse lists nothing usable: the folder is not cached.
      return { format, files: [{ file: C2C_WEB_MARKER, cached: false }] };
    }
  } else if ((await Promise.all(OFFICIAL_MARKERS.map((f) => reader.isCached(f)))).every(Boolean)) {
    format = 'official';
    let indices: number[];
    try {
      const map = JSON.parse(new TextDecoder().decode(await reader.read(OFFICIAL_MARKERS[1]))) as Record<string, unknown>;
      indices = [...new Set(parseLayerMap(map, OFFICIAL_MARKERS[1]).projectorIndex)];
    } catch {
      return { format, files: [{ file: OFFICIAL_MARKERS[1], cached: false }] };
    }
    files = [...OFFICIAL_MARKERS, ...indices.flatMap((i) => [`final/projector_${i}.json`, `final/projector_${i}.pt`])];
  } else {
    return { files: [{ file: C2C_WEB_MARKER, cached: false }] };
  }
  return { format, files: await Promise.all(files.map(async (file) => ({ file, cached: await reader.isCached(file) }))) };
}
