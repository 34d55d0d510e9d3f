/** `c2c-web` command line: argument parsing and dispatch. Returns the process exit code. */
import { C2CError } from '../errors';
import type { FuserDType } from '../types';
import { convertOfficialCheckpoint } from './convert';

const USAGE = `Usage: c2c-web convert <official-folder> <out-folder> [--dtype float32|float16|bfloat16|int8] [--sharer-layers N]

  Converts a released C2C fuser (config.json + final/projector_{i}.pt/.json + final/projector_config.json)
  into the c2c-web fuser format (fuser.json + fuser.safetensors). Default dtype: the stored one (bfloat16).
  The .pt files are read by a restricted unpickler; nothing in them is executed.`;

const DTYPES = new Set(['float32', 'float16', 'bfloat16', 'int8']);

export async function main(argv: string[], out: (s: string) => void = console.log, err: (s: string) => void = console.error): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    out(USAGE);
    return cmd ? 0 : 2;
  }
  if (cmd === 'serve') {
    const { serve, SERVE_USAGE } = await import('./serve');
    if (rest.includes('--help') || rest.includes('-h')) {
      out(SERVE_USAGE);
      return 0;
    }
    try {
      const handle = await serve(rest, out);
      // Runs until interrupted.
      await new Promise<void>((done) => process.once('SIGINT', () => void handle.close().then(done)));
      return 0;
    } catch (e) {
      err(`${(e as Error).name}: ${(e as Error).message}\n\n${SERVE_USAGE}`);
      return e instanceof TypeError ? 2 : 1;
    }
  }
  if (cmd !== 'convert') {
    err(`unknown command '${cmd}'\n\n${USAGE}`);
    return 2;
  }
  const positional: string[] = [];
  let dtype: FuserDType | undefined;
  let sharerNumLayers: number | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => inline ?? rest[++i];
    if (flag === '--dtype') {
      const v = value();
      if (!v || !DTYPES.has(v)) {
        err(`--dtype must be float32, float16, bfloat16 or int8 (got ${v ?? 'nothing'})`);
        return 2;
      }
      dtype = v as FuserDType;
    } else if (flag === '--sharer-layers') {
      const v = Number(value());
      if (!Number.isInteger(v) || v <= 0) {
        err('--sharer-layers must be a positive integer');
        return 2;
      }
      sharerNumLayers = v;
    } else if (flag === '--help' || flag === '-h') {
      out(USAGE);
      return 0;
    } else if (a.startsWith('-')) {
      err(`unknown option '${a}'\n\n${USAGE}`);
      return 2;
    } else {
      positional.push(a);
    }
  }
  if (positional.length !== 2) {
    err(`convert needs <official-folder> and <out-folder>\n\n${USAGE}`);
    return 2;
  }
  const [inDir, outDir] = positional;
  const t0 = performance.now();
  try {
    const s = await convertOfficialCheckpoint(inDir, outDir, {
      dtype,
      sharerNumLayers,
      onProgress: (done, total) => {
        if (done === total || done % 4 === 0) out(`  read ${done}/${total} projectors`);
      },
    });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    out(`converted ${s.receiverLayers} projectors (receiver ${s.receiverLayers} layers, sharer ${s.sharerLayers}), ` +
      `${s.parameters.toLocaleString('en-US')} parameters, ${s.dtype}, ${(s.bytesWritten / 1e6).toFixed(2)} MB → ${outDir} in ${secs} s`);
    return 0;
  } catch (e) {
    if (e instanceof C2CError) {
      err(`${e.name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
