/** Fetches a c2c-web fuser folder (fuser.json + the files it lists) from a URL and loads it. */
import { C2CError, FuserFormatError } from '../../errors';
import type { FuserWeights } from '../../types';
import { readManifest, type FuserManifest } from './manifest';
import { loadFuserWeights, type LoadFuserOptions } from './validate';

/** Fetches fuser.json and its files relative to `baseUrl` (a folder URL, with or without trailing slash). */
export async function loadFuserFromUrl(
  baseUrl: string,
  opts: { fetch?: typeof fetch; signal?: AbortSignal } & LoadFuserOptions = {},
): Promise<FuserWeights> {
  const doFetch = opts.fetch ?? fetch;
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const get = async (name: string): Promise<Response> => {
    let res: Response;
    try {
      res = await doFetch(new URL(name, new URL(base, globalThis.location?.href ?? 'http://localhost/')).href, { signal: opts.signal });
    } catch (e) {
      if ((e as Error)?.name === 'AbortError' || e instanceof C2CError) throw e;
      throw new FuserFormatError(`could not fetch ${base}${name}: ${(e as Error).message}`, { file: name }, { cause: e });
    }
    if (!res.ok) throw new FuserFormatError(`could not fetch ${base}${name}: HTTP ${res.status}`, { file: name, status: res.status });
    return res;
  };
  let json: unknown;
  try {
    json = await (await get('fuser.json')).json();
  } catch (e) {
    if (e instanceof C2CError || (e as Error)?.name === 'AbortError') throw e;
    throw new FuserFormatError(`fuser.json is not valid JSON: ${(e as Error).message}`, { field: 'fuser.json' });
  }
  const manifest: FuserManifest = readManifest(json);
  const files: Record<string, Uint8Array> = {};
  for (const f of manifest.files) files[f] = new Uint8Array(await (await get(f)).arrayBuffer());
  return loadFuserWeights(json, files, { weightDType: opts.weightDType });
}
