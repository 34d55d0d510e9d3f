/** Loads a c2c-web fuser folder (fuser.json + the files it lists) through a FuserFileReader (URL, directory, memory). */
import { AbortError, C2CError, FuserFormatError, throwIfAborted } from '../../errors';
import type { FuserConfig, FuserWeights } from '../../types';
import type { FuserFileReader } from './files';
import { httpFileReader, type HttpReaderOptions } from './http-reader';
import { readManifest, type FuserManifest } from './manifest';
import { loadFuserWeights, type LoadFuserOptions } from './validate';

export interface ReaderLoadOptions extends LoadFuserOptions {
  signal?: AbortSignal;
  /**
   * Called once fuser.json is read and before any weight file is: may throw (e.g. MemoryBudgetError) to refuse
   * the download. `fileBytes`: the sum of the listed files' sizes when fuser.json's `integrity` gives them all.
   */
  beforeWeights?: (config: FuserConfig, fileBytes: number | undefined) => void;
}

/** Parses fuser.json bytes (FuserFormatError on invalid UTF-8/JSON or content). */
function parseManifestBytes(bytes: Uint8Array): { json: unknown; manifest: FuserManifest } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new FuserFormatError(`fuser.json is not valid JSON: ${(e as Error).message}`, { field: 'fuser.json' }, { cause: e });
  }
  return { json, manifest: readManifest(json) };
}

/** Reads fuser.json, then each listed file with its `integrity` facts, and builds the weights. */
export async function loadFuserFromReader(reader: FuserFileReader, opts: ReaderLoadOptions = {}): Promise<FuserWeights> {
  throwIfAborted(opts.signal);
  const { json, manifest } = parseManifestBytes(await reader.read('fuser.json'));
  const sizes = manifest.files.map((f) => manifest.integrity[f]?.size);
  opts.beforeWeights?.(manifest.config, sizes.every((s) => s !== undefined) ? (sizes as number[]).reduce((a, b) => a + b, 0) : undefined);
  const files: Record<string, Uint8Array> = {};
  for (const f of manifest.files) {
    throwIfAborted(opts.signal);
    try {
      files[f] = await reader.read(f, manifest.integrity[f]);
    } catch (e) {
      if (e instanceof C2CError || e instanceof AbortError) throw e;
      throw new FuserFormatError(`cannot read fuser file '${f}' from ${reader.location}: ${(e as Error).message}`, { file: f },
        { cause: e });
    }
  }
  return loadFuserWeights(json, files, { weightDType: opts.weightDType });
}

/** Fetches fuser.json and its files relative to `baseUrl` (a folder URL, with or without trailing slash). */
export async function loadFuserFromUrl(baseUrl: string, opts: HttpReaderOptions & ReaderLoadOptions = {}): Promise<FuserWeights> {
  return loadFuserFromReader(httpFileReader(baseUrl, opts), opts);
}
