/** Browser (or any fetch) reader for an official checkpoint hosted as static files under one base URL. */
import { CheckpointFormatError } from '../errors';
import type { CheckpointReader } from './official';

export function urlCheckpointReader(baseUrl: string, opts: { fetch?: typeof fetch; signal?: AbortSignal } = {}): CheckpointReader {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  return {
    async read(path) {
      const url = new URL(path, base).toString();
      const res = await doFetch(url, { signal: opts.signal });
      if (!res.ok) throw new CheckpointFormatError(`cannot fetch '${path}' (${res.status} ${res.statusText}) from ${url}`, { field: path, status: res.status });
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}
