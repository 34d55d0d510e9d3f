/** `c2c-web convert <official-folder> <out-folder>`: a released C2C checkpoint → the c2c-web fuser format. */
import { InvalidInputError } from '../../errors';
import type { FuserDType } from '../../types';
import { defineCommand } from '../command';
import { convertOfficialCheckpoint } from '../convert';

const DTYPES: readonly FuserDType[] = ['float32', 'float16', 'bfloat16', 'int8'];

interface ConvertArgs {
  inDir: string;
  outDir: string;
  dtype?: FuserDType;
  sharerNumLayers?: number;
}

export const convertCommand = defineCommand<ConvertArgs>({
  name: 'convert',
  summary: 'convert a released C2C fuser checkpoint into the c2c-web fuser format',
  usage: `Usage: c2c-web convert <official-folder> <out-folder> [--dtype float32|float16|bfloat16|int8] [--sharer-layers N]

  Converts a released C2C fuser (config.json + final/projector_{i}.pt/.json + final/projector_config.json)
  into the c2c-web fuser format (fuser.json + fuser.safetensors). Default dtype: the stored one (bfloat16).
  The .pt files are read by a restricted unpickler; nothing in them is executed.`,
  options: {
    dtype: { type: 'string' },
    'sharer-layers': { type: 'string' },
  },
  parse({ values, positionals }) {
    if (positionals.length !== 2) {
      const got = `got ${positionals.length} arguments`;
      throw new InvalidInputError(`convert needs <official-folder> and <out-folder> (${got})`, { field: 'positionals' });
    }
    const dtype = values.dtype as string | undefined;
    if (dtype !== undefined && !DTYPES.includes(dtype as FuserDType)) {
      throw new InvalidInputError(`--dtype must be ${DTYPES.join(', ')} (got '${dtype}')`, { field: '--dtype', actual: dtype });
    }
    const layers = values['sharer-layers'] as string | undefined;
    const sharerNumLayers = layers === undefined ? undefined : Number(layers);
    if (sharerNumLayers !== undefined && !(/^\d+$/.test(layers ?? '') && sharerNumLayers > 0)) {
      const details = { field: '--sharer-layers', actual: layers };
      throw new InvalidInputError(`--sharer-layers must be a positive integer (got '${layers}')`, details);
    }
    return { inDir: positionals[0], outDir: positionals[1], dtype: dtype as FuserDType | undefined, sharerNumLayers };
  },
  async run({ inDir, outDir, dtype, sharerNumLayers }, { out }) {
    const t0 = performance.now();
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
  },
});
