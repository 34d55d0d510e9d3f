/**
 * A read-only Hub mirror on 127.0.0.1 over a stand-in folder: `GET <url><org>/<name>/resolve/<rev>/<file>`
 * streams `<root>/<org>/<name>/<file>` from disk (GET, HEAD, single byte ranges; CORS open for browser pages
 * on another port), 404 otherwise. With it the engine loads the stand-ins exactly as a Hub user loads the
 * real pair: remote model ids through transformers.js (`EngineOptions.remoteHost`) and the released fuser
 * folder by URL, with byte progress, no local-path shortcut. Written by hand: a dozen lines of node:http do
 * what a static-server dependency would, and the Hub's `resolve/<rev>` path shape is not one they speak.
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, normalize, sep } from 'node:path';

export interface HubMirror {
  /** Base URL ending in '/': pass as `EngineOptions.remoteHost`. */
  url: string;
  /** Every request as `METHOD path status`, in order. */
  readonly log: string[];
  /** Body bytes sent so far. */
  bytesSent(): number;
  close(): Promise<void>;
}

const RESOLVE = /^\/([^/]+\/[^/]+)\/resolve\/[^/]+\/(.+)$/;

export async function serveHubMirror(root: string): Promise<HubMirror> {
  const log: string[] = [];
  let sent = 0;
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const cors = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'content-length, content-range, etag' };
    const done = (status: number) => log.push(`${req.method} ${path} ${status}`);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'access-control-allow-headers': '*', 'access-control-allow-methods': 'GET, HEAD' }).end();
      return;
    }
    const m = RESOLVE.exec(path);
    const file = m ? normalize(join(root, m[1], m[2])) : '';
    let size = -1;
    try {
      const st = m && file.startsWith(normalize(root) + sep) ? statSync(file) : undefined;
      if (st?.isFile()) size = st.size;
    } catch {
      size = -1;
    }
    if (size < 0) {
      done(404);
      res.writeHead(404, { ...cors, 'content-type': 'text/plain' }).end('Entry not found');
      return;
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    const status = range ? 206 : 200;
    const headers: Record<string, string | number> = {
      ...cors, 'content-type': 'application/octet-stream', 'content-length': end - start + 1, etag: `"${size}"`, 'accept-ranges': 'bytes',
    };
    if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, headers);
    done(status);
    if (req.method === 'HEAD' || size === 0) {
      res.end();
      return;
    }
    const stream = createReadStream(file, { start, end });
    stream.on('data', (c) => (sent += c.length));
    stream.pipe(res);
    res.on('close', () => stream.destroy());
  });
  return { ...(await listenOnLoopback(server)), log, bytesSent: () => sent };
}

/** Starts `server` on a free 127.0.0.1 port: its base URL (ending in '/') and a close that drops open sockets. */
export async function listenOnLoopback(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
