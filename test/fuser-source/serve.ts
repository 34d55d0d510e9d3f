/**
 * A static file server on 127.0.0.1 for the fuser loading tests: serves in-memory folders under URL prefixes,
 * counts requests per path, and can misbehave on purpose (announce more bytes than it sends, then hang up).
 */
import { createServer, type Server } from 'node:http';
import { listenOnLoopback } from '../../src/standins/hub-mirror';

export interface TestServer {
  url: string;
  /** Requests so far whose path starts with `prefix` (all when omitted). */
  count(prefix?: string): number;
  /** Paths requested so far, in order. */
  readonly log: string[];
  /** Serve this path truncated: Content-Length says the full size, the body stops at `bytes`, then the socket closes. */
  truncate(path: string, bytes: number): void;
  close(): Promise<void>;
}

/** `spaFallback`: answer every missing path 200 with this page, as a single-page-app server does. */
export async function serveFolders(folders: Record<string, Record<string, Uint8Array>>, spaFallback?: Uint8Array): Promise<TestServer> {
  const log: string[] = [];
  const truncated = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    log.push(path);
    const prefix = Object.keys(folders).find((p) => path.startsWith(`/${p}/`));
    const body = prefix ? folders[prefix][path.slice(prefix.length + 2)] : undefined;
    if (!body && spaFallback) {
      res.writeHead(200, { 'content-length': spaFallback.length, 'content-type': 'text/html' }).end(spaFallback);
      return;
    }
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    const cut = truncated.get(path);
    if (cut === undefined) {
      res.end(body);
      return;
    }
    res.write(body.subarray(0, cut), () => res.destroy());
  });
  return {
    ...(await listenOnLoopback(server)),
    log,
    count: (prefix = '/') => log.filter((p) => p.startsWith(prefix)).length,
    truncate: (path, bytes) => void truncated.set(path, bytes),
  };
}
