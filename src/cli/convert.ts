/**
 * `convert`: official C2C checkpoint folder (config.json + final/projector_*.{pt,json}) → c2c-web fuser
 * folder (fuser.json + fuser.safetensors). Node only; the loading itself is the browser-safe loader.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serializeFuser } from '../fuser/format/serialise';
import type { FuserDType } from '../types';
import { loadOfficialCheckpointFromDirectoryWithInfo } from '../checkpoints/node-io';

export interface ConvertOptions {
  dtype?: FuserDType;
  sharerNumLayers?: number;
  onProgress?: (done: number, total: number, file: string) => void;
}

export interface ConvertSummary {
  receiverLayers: number;
  sharerLayers: number;
  parameters: number;
  dtype: FuserDType;
  bytesWritten: number;
  files: string[];
}

export async function convertOfficialCheckpoint(inDir: string, outDir: string, opts: ConvertOptions = {}): Promise<ConvertSummary> {
  const { weights, info } = await loadOfficialCheckpointFromDirectoryWithInfo(inDir, {
    sharerNumLayers: opts.sharerNumLayers,
    onProgress: opts.onProgress,
  });
  // Default to the stored dtype (bf16 for released fusers): converting never silently loses precision.
  const dtype = opts.dtype ?? weights.config.dtype;
  const { json, files } = serializeFuser(weights, {
    dtype,
    metadata: {
      source: 'official C2C checkpoint (rosetta C2CProjector), converted by c2c-web convert',
      base_model: info.baseModel ?? null,
      teacher_model: info.teacherModel ?? null,
      stored_dtype: info.storedDtype,
      projector_index: info.projectorIndex,
    },
  });
  await mkdir(outDir, { recursive: true });
  let bytesWritten = 0;
  const written: string[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    await writeFile(join(outDir, name), bytes);
    bytesWritten += bytes.length;
    written.push(name);
  }
  // fuser.json last: a folder with fuser.json is complete.
  const text = `${JSON.stringify(json, null, 2)}\n`;
  await writeFile(join(outDir, 'fuser.json'), text);
  written.push('fuser.json');
  bytesWritten += text.length;
  let parameters = 0;
  for (const layer of weights.layers) {
    for (const p of [layer.key, layer.value]) {
      const lin = [p.in, p.scalarHead, p.projOut, ...[...p.mlp1, ...p.scalarMlp2, ...p.projMlp2].flatMap((b) => [b.w1, b.w2])];
      parameters += 1 + lin.reduce((n, l) => n + l.weight.length + (l.bias?.length ?? 0), 0);
      parameters += [...p.mlp1, ...p.scalarMlp2, ...p.projMlp2].reduce((n, b) => n + b.norm.length, 0);
    }
  }
  return {
    receiverLayers: weights.config.receiver.numLayers,
    sharerLayers: weights.config.sharer.numLayers,
    parameters,
    dtype,
    bytesWritten,
    files: written,
  };
}
