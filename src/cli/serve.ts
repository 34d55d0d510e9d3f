/**
 * Starting the local OpenAI-compatible server (src/server/openai-server.ts) on the Node engine for `c2c-web serve`
 * (src/cli/commands/serve.ts parses the arguments). `--pair` is a folder holding receiver/, sharer/ and fuser/
 * (the layout of the shipped pair); default: the embedded pair shipped with the package.
 */
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { ModelLoadError } from '../errors';
import { embeddedPair } from '../embedded-pair';
import type { EngineOptions } from '../types';
import { createNodeC2CEngine } from '../node';
import { createOpenAIServer } from '../server/openai-server';

export const SERVE_USAGE = `Usage: c2c-web serve [--port N] [--host H] [--pair DIR] [--name ID] [--cors]

  Serves an OpenAI-compatible API (GET /v1/models, POST /v1/chat/completions, JSON and SSE streaming) on the
  Node engine. Model ids: <name> (C2C) and <name>/text-relay, <name>/receiver, <name>/sharer.
  --pair DIR  a folder with receiver/, sharer/ and fuser/ (default: the embedded pair shipped with c2c-web)
  --port N    default 8080 (0: any free port)     --host H   default 127.0.0.1
  --name ID   model id (default: the pair folder's name)     --cors   allow requests from any origin`;

export interface ServeHandle {
  url: string;
  close(): Promise<void>;
}

export interface ServeArgs {
  port: number;
  host: string;
  /** A folder with receiver/, sharer/, fuser/ (default: the embedded pair). */
  pair?: string;
  name?: string;
  cors: boolean;
}

/** Loads the pair and starts listening; resolves once the server is up. */
export async function startServer(args: ServeArgs, out: (s: string) => void = console.log): Promise<ServeHandle> {
  let opts: EngineOptions;
  if (args.pair) {
    const dir = resolve(args.pair);
    for (const sub of ['receiver', 'sharer', 'fuser']) {
      if (!existsSync(
        resolve(dir, sub))) throw new ModelLoadError(`--pair ${dir} has no ${sub}/ folder (expected receiver/, sharer/, fuser/)`,
        { field: '--pair' });
    }
    opts = { name: basename(dir), receiver: { id: 'receiver', localPath: dir }, sharer: { id: 'sharer', localPath: dir },
      fuser: resolve(dir, 'fuser') };
  } else opts = embeddedPair();
  const name = args.name ?? opts.name ?? 'pair';
  const engine = await createNodeC2CEngine({ ...opts, name });
  const server = createOpenAIServer(engine, { cors: args.cors });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(args.port, args.host, () => ok());
  });
  const addr = server.address();
  const url = `http://${args.host}:${typeof addr === 'object' && addr ? addr.port : args.port}/v1`;
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
