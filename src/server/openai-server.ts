/**
 * A local OpenAI-compatible HTTP server over one C2CEngine (node:http, no framework: two routes):
 *   GET  /v1/models            → the pair as `<pair>` (C2C) and `<pair>/text-relay|receiver|sharer`
 *   POST /v1/chat/completions  → JSON, or SSE with `stream: true` (`stream_options.include_usage` honoured)
 * Bad requests get OpenAI-style error bodies (`{ error: { message, type, param, code } }`) with 400/404/405/413;
 * a client that disconnects aborts its generation; concurrent requests queue in the engine (one at a time per
 * model, never interleaved).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AbortError, C2CError, ContextOverflowError, InvalidInputError } from '../errors';
import { GENERATION_MODES, type ChatCompletionRequest, type ChatCompletionsApi } from '../types';

export interface OpenAIServerOptions {
  /** Largest accepted request body (default 1 MiB): larger ones get 413. */
  maxBodyBytes?: number;
  /** Answer CORS preflights and allow any origin (for pages on other origins; default off). */
  cors?: boolean;
}

/** What the server needs of an engine. */
export interface ServedEngine {
  readonly modelId: string;
  readonly chat: { readonly completions: ChatCompletionsApi };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/** OpenAI-style status and error body for anything a request can fail with. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof ContextOverflowError) return new HttpError(400, e.message, 'invalid_request_error',
    'context_length_exceeded', 'messages');
  if (e instanceof InvalidInputError) {
    const field = typeof e.details?.field === 'string' ? e.details.field : null;
    if (field === 'model') return new HttpError(404, e.message, 'invalid_request_error', 'model_not_found', 'model');
    return new HttpError(400, e.message, 'invalid_request_error', e.code ?? null, field);
  }
  if (e instanceof C2CError) return new HttpError(500, e.message, 'server_error', e.code ?? null);
  return new HttpError(500, (e as Error)?.message ?? String(e), 'server_error');
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > limit) return reject(new HttpError(413, `request body of ${declared} bytes exceeds the ${limit}-byte limit`,
      'invalid_request_error', 'request_too_large'));
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (b: Buffer) => {
      size += b.length;
      // Past the limit the rest is read and dropped (the 413 goes out once, on a closing connection).
      if (size > limit) reject(new HttpError(413, `request body exceeds the ${limit}-byte limit`, 'invalid_request_error',
        'request_too_large'));
      else parts.push(b);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text),
    ...(status === 413 ? { Connection: 'close' } : {}) });
  res.end(text);
}

function sendError(res: ServerResponse, e: unknown): void {
  const h = toHttpError(e);
  if (res.headersSent) {
    // Mid-stream: the error goes out as an SSE event (as OpenAI's streams do), then the stream ends.
    if (!res.writableEnded) res.end(`data: ${JSON.stringify({ error: { message: h.message, type: h.type, param: h.param, code: h.code } })}\n\n`);
    return;
  }
  sendJson(res, h.status, { error: { message: h.message, type: h.type, param: h.param, code: h.code } });
}

function modelList(engine: ServedEngine) {
  const created = Math.floor(Date.now() / 1000);
  const ids = [engine.modelId, ...GENERATION_MODES.filter((m) => m !== 'c2c').map((m) => `${engine.modelId}/${m}`)];
  return { object: 'list', data: ids.map((id) => ({ id, object: 'model', created, owned_by: 'c2c-web' })) };
}

async function completions(engine: ServedEngine, req: IncomingMessage, res: ServerResponse, limit: number): Promise<void> {
  const raw = await readBody(req, limit);
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch (e) {
    throw new HttpError(400, `the request body is not valid JSON: ${(e as Error).message}`, 'invalid_request_error');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'the request body must be a JSON object',
    'invalid_request_error');
  const request = body as ChatCompletionRequest & Record<string, unknown>;
  if (typeof request.model !== 'string') throw new HttpError(400, 'model is required (GET /v1/models lists them)',
    'invalid_request_error', null, 'model');
  if ('signal' in request) delete request.signal;
  // A client that goes away (closed socket before the response ended) aborts its generation.
  const ctl = new AbortController();
  res.on('close', () => {
    if (!res.writableEnded) ctl.abort(new AbortError('the client disconnected'));
  });
  request.signal = ctl.signal;
  if (!request.stream) {
    sendJson(res, 200, await engine.chat.completions.create({ ...request, stream: false }));
    return;
  }
  const stream = await engine.chat.completions.create({ ...request, stream: true });
  const it = stream[Symbol.asyncIterator]();
  // The first chunk comes only once generation started: an immediate failure is still an HTTP error.
  let step = await it.next();
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  try {
    for (; !step.done; step = await it.next()) {
      if (ctl.signal.aborted) break;
      res.write(`data: ${JSON.stringify(step.value)}\n\n`);
    }
  } catch (e) {
    if (ctl.signal.aborted) return;
    sendError(res, e);
    return;
  } finally {
    if (ctl.signal.aborted) await it.return?.();
  }
  res.end('data: [DONE]\n\n');
}

/** Creates (does not start) the server; `server.listen(port, host)` starts it. */
export function createOpenAIServer(engine: ServedEngine, opts: OpenAIServerOptions = {}): Server {
  const limit = opts.maxBodyBytes ?? 1 << 20;
  return createServer((req, res) => {
    if (opts.cors) {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type');
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
      if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    }
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
    const route = async () => {
      if (path === '/v1/models') {
        if (req.method !== 'GET') throw new HttpError(405, `${req.method} is not allowed on ${path}`, 'invalid_request_error');
        return sendJson(res, 200, modelList(engine));
      }
      if (path === '/v1/chat/completions') {
        if (req.method !== 'POST') throw new HttpError(405, `${req.method} is not allowed on ${path}`, 'invalid_request_error');
        return completions(engine, req, res, limit);
      }
      throw new HttpError(404, `no route ${req.method} ${path} (this server has GET /v1/models and POST /v1/chat/completions)`,
        'invalid_request_error', 'not_found');
    };
    route().catch((e) => {
      if (e instanceof AbortError || (res.destroyed && !res.headersSent)) return;
      sendError(res, e);
    });
  });
}
