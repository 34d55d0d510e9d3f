/**
 * What one `c2c-web` subcommand is: its usage text, its `node:util` parseArgs options, a `parse` step that
 * turns the raw values into typed arguments (bad ones throw InvalidInputError → exit code 2 with usage) and
 * a `run` step (a C2CError there → exit code 1). main.ts keeps the table of commands.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { InvalidInputError } from '../errors';

/** Where a command writes: stdout and stderr lines (tests pass collectors). */
export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface CliCommand<Args = unknown> {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full usage text, printed with --help and after a bad argument. */
  usage: string;
  /** parseArgs options (string/boolean flags); `--help`/`-h` is added for every command. */
  options: ParseArgsOptionsConfig;
  parse(args: ParsedArgs): Args;
  run(args: Args, io: CliIO): Promise<void>;
}

/** Type-erases a command for the dispatch table while checking parse → run agree on `Args`. */
export function defineCommand<Args>(command: CliCommand<Args>): CliCommand<unknown> {
  return command as CliCommand<unknown>;
}

/** parseArgs in strict mode; its own errors (unknown option, missing value) become InvalidInputError. */
export function parseCommandLine(argv: string[], options: ParseArgsOptionsConfig): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      throw new InvalidInputError((e as Error).message, { field: 'argv', code });
    }
    throw e;
  }
}
