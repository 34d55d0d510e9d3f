/**
 * `c2c-web` command line: picks the subcommand from a table (one module per command under commands/), parses
 * its arguments with node:util parseArgs and maps the outcome to an exit code: 0 done, 1 the command failed
 * (a typed C2CError or a file-system error, printed as one line), 2 bad arguments (printed with the usage).
 */
import { C2CError, InvalidInputError } from '../errors';
import { parseCommandLine, type CliCommand, type CliIO } from './command';
import { convertCommand } from './commands/convert';
import { serveCommand } from './commands/serve';

const COMMANDS: Record<string, CliCommand<unknown>> = {
  [convertCommand.name]: convertCommand,
  [serveCommand.name]: serveCommand,
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const list = Object.values(COMMANDS).map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
  return `Usage: c2c-web <command> [options]\n\nCommands:\n${list}\n\nRun 'c2c-web <command> --help' for a command's options.`;
}

/** A Node file-system error (ENOENT, EACCES, …): the user's input, not a bug, so no stack trace. */
function isSystemError(e: unknown): e is Error & { code: string } {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

export async function main(argv: string[], out: CliIO['out'] = console.log, err: CliIO['err'] = console.error): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    err(usage());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
    out(topic ? topic.usage : usage());
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    err(`unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  let args: unknown;
  try {
    const parsed = parseCommandLine(rest, { ...command.options, help: { type: 'boolean', short: 'h' } });
    if (parsed.values.help) {
      out(command.usage);
      return 0;
    }
    args = command.parse(parsed);
  } catch (e) {
    if (!(e instanceof InvalidInputError)) throw e;
    err(`${e.message}\n\n${command.usage}`);
    return 2;
  }
  try {
    await command.run(args, { out, err });
    return 0;
  } catch (e) {
    if (e instanceof C2CError || isSystemError(e)) {
      err(`${e.name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
