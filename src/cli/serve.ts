/**
 * `c2c-web serve [--port N] [--host H] [--pair DIR] [--name ID] [--cors]`: the local OpenAI-compatible server
 * (src/server/openai-server.ts) on the Node engine. `--pair` is a folder holding receiver/, sharer/ and fuser/
 * (the layout of the shipped pair); default: the embedded pair shipped with the package.
 */
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createNodeC2CEngine } from '../node';
import { createOpenAIServer } from '../server/openai-server';

export const SERVE_USAGE = `Usage: c2c-web serve [--port N] [--host H] [--pair DIR] [--name ID] [--cors]

  Serves an OpenAI-compatible API (GET /v1/models, POST /v1/chat/completions, JSON and SSE streaming) on the
  Node engine. Model ids: <name> (C2C) and <name>/text-relay, <name>/receiver, <name>/sharer.
  --pair DIR  a folder with receiver/, sharer/ and fuser/ (default: the embedded pair shipped with c2c-web)
  --port N    default 8080 (0: any free port)     --host H   default 127.0.0.1
  --name ID   model id (default: the pair folder's name)     --cors   allow requests from any origin`;

/** The shipped pair, wherever this module runs from (sources under src/cli, or the built dist-lib). */
export function defaultPairDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const rel of ['../models/c2c-tiny', '../../models/c2c-tiny']) {
    const dir = resolve(here, rel);
    if (existsSync(resolve(dir, 'fuser'))) return dir;
  }
  return resolve(here, '../models/c2c-tiny');
}

export interface ServeHandle {
  url: string;
  close(): Promise<void>;
}

/** Parses `argv` (after "serve"), loads the pair, starts listening; resolves once the server is up. */
export async function serve(argv: string[], out: (s: string) => void = console.log): Promise<ServeHandle> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      pair: { type: 'string' },
      name: { type: 'string' },
      cors: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`--port must be an integer in 0..65535, got ${values.port}`);
  const dir = resolve(values.pair ?? defaultPairDir());
  for (const sub of ['receiver', 'sharer', 'fuser']) {
    if (!existsSync(resolve(dir, sub))) throw new TypeError(`--pair ${dir} has no ${sub}/ folder (expected receiver/, sharer/, fuser/)`);
  }
  const name = values.name ?? basename(dir);
  const engine = await createNodeC2CEngine({
    name,
    receiver: { id: 'receiver', localPath: dir },
    sharer: { id: 'sharer', localPath: dir },
    fuser: resolve(dir, 'fuser'),
  });
  const server = createOpenAIServer(engine, { cors: values.cors });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, values.host, () => ok());
  });
  const addr = server.address();
  const url = `http://${values.host}:${typeof addr === 'object' && addr ? addr.port : port}/v1`;
  out(`c2c-web: serving ${name} (${engine.device.backend}, fuser ${engine.device.fuserBackend}) at ${url}`);
  out(`  models: ${name}, ${name}/text-relay, ${name}/receiver, ${name}/sharer`);
  return {
    url,
    close: async () => {
      const closed = new Promise<void>((ok) => server.close(() => ok()));
      server.closeAllConnections();
      await closed;
      await engine.dispose();
    },
  };
}
