/** Browser (or any fetch) reader for an official checkpoint hosted as static files under one base URL. */
import { CheckpointFormatError, InvalidInputError } from '../errors';
import type { CheckpointReader } from './official';

export function urlCheckpointReader(baseUrl: string, opts: { fetch?: typeof fetch; signal?: AbortSignal } = {}): CheckpointReader {
  // A relative base ('/fusers/x/') resolves against the page, as fetch would.
  const pageUrl = (globalThis as { location?: { href: string } }).location?.href;
  let base: string;
  try {
    base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`, pageUrl).toString();
  } catch {
    throw new InvalidInputError(`checkpoint base URL '${baseUrl}' is not absolute and there is no page to resolve it against`, { field: 'baseUrl' });
  }
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
