/** `c2c-web serve`: the local OpenAI-compatible server on the Node engine (runs until SIGINT/SIGTERM). */
import { InvalidInputError } from '../../errors';
import { defineCommand } from '../command';
import { SERVE_USAGE, startServer, type ServeArgs } from '../serve';

export const serveCommand = defineCommand<ServeArgs>({
  name: 'serve',
  summary: 'serve an OpenAI-compatible API (/v1/models, /v1/chat/completions) for a pair (default: the embedded one)',
  usage: SERVE_USAGE,
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    pair: { type: 'string' },
    name: { type: 'string' },
    cors: { type: 'boolean' },
  },
  parse({ values, positionals }) {
    if (positionals.length) throw new InvalidInputError(`serve takes no positional arguments (got ${positionals.join(' ')})`,
      { field: 'positionals' });
    const port = values.port === undefined ? 8080 : Number(values.port);
    if (!(typeof values.port !== 'string' || /^\d+$/.test(values.port)) || !Number.isInteger(port) || port > 65535) {
      throw new InvalidInputError(`--port must be an integer in 0..65535 (got '${values.port}')`, { field: '--port', actual: values.port });
    }
    return { port, host: (values.host as string) ?? '127.0.0.1', pair: values.pair as string | undefined,
      name: values.name as string | undefined, cors: values.cors === true };
  },
  async run(args, { out }) {
    const handle = await startServer(args, out);
    await new Promise<void>((done) => {
      const stop = () => void handle.close().then(done);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
});
