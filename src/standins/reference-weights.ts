/**
 * The stand-in decoder's weights under their HF names, float32, as one safetensors file: what an
 * independent implementation (test/standins/reference_decoder.py) loads to check the ONNX graphs. Meant for
 * the reduced variants (the file is built in memory).
 */
import { writeFileSync } from 'node:fs';
import { InvalidInputError } from '../errors';
import { writeSafetensors } from '../fuser/safetensors';
import type { ModelArch } from '../presets';
import { decoderWeights, numelOf, weightValues } from './decoder-weights';
import type { FamilyTraits } from './families';

const MAX_BYTES = 1 << 30;

export function writeReferenceWeights(path: string, a: ModelArch, traits: FamilyTraits, seed: number): number {
  const weights = decoderWeights(a, traits);
  const bytes = weights.reduce((n, w) => n + numelOf(w.shape) * 4, 0);
  if (bytes > MAX_BYTES) throw new InvalidInputError(`reference weights would take ${bytes} bytes; export them for a reduced variant`,
    { field: 'arch', actual: bytes });
  const file = writeSafetensors(weights.map((w) => ({ name: w.name, dtype: 'F32', shape: w.shape, data: weightValues(w, seed) })));
  writeFileSync(path, file);
  return file.length;
}
