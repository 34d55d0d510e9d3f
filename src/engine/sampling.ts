/**
 * Next-token selection from one row of logits: greedy (temperature 0 or absent), or sampling with
 * repetition penalty → temperature → top-k → top-p (the order of the reference `sample_token`), from a
 * seeded generator so a given seed reproduces the same tokens on every backend.
 */
import { InvalidInputError } from '../errors';
import type { SamplingOptions } from './types';
import { seededRandom } from '../util/seeded-random';

/** The sampling generator: seeded mulberry32 (see src/util/seeded-random.ts). */
export const createRng = seededRandom;

export function validateSampling(s: SamplingOptions | undefined): void {
  if (!s) return;
  const bad = (field: string, actual: unknown, why: string) => {
    throw new InvalidInputError(`sampling.${field} ${why} (got ${String(actual)})`, { field: `sampling.${field}`, actual });
  };
  if (s.temperature !== undefined && !(s.temperature >= 0 && Number.isFinite(s.temperature))) bad('temperature', s.temperature, 'must be a finite number >= 0');
  if (s.topK !== undefined && !(Number.isInteger(s.topK) && s.topK >= 0)) bad('topK', s.topK, 'must be an integer >= 0');
  if (s.topP !== undefined && !(s.topP > 0 && s.topP <= 1)) bad('topP', s.topP, 'must be in (0, 1]');
  if (s.repetitionPenalty !== undefined && !(s.repetitionPenalty > 0 && Number.isFinite(s.repetitionPenalty))) {
    bad('repetitionPenalty', s.repetitionPenalty, 'must be a finite number > 0');
  }
  if (s.seed !== undefined && !Number.isInteger(s.seed)) bad('seed', s.seed, 'must be an integer');
}

/** HF-style repetition penalty on every token already seen (prompt + generated): divide positive logits, multiply negative. */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(seen)) {
    if (id < 0 || id >= logits.length) continue;
    const v = logits[id];
    logits[id] = v > 0 ? v / penalty : v * penalty;
  }
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  let bv = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    // Strictly greater: ties go to the lowest id, like torch.argmax.
    if (logits[i] > bv) {
      bv = logits[i];
      best = i;
    }
  }
  return best;
}

/** Picks a token; `logits` is modified in place (penalty), so pass a copy if the caller needs it. */
export class TokenSampler {
  private readonly rng: () => number;
  constructor(private readonly opts: SamplingOptions = {}) {
    validateSampling(opts);
    this.rng = createRng(opts.seed ?? Math.floor(Math.random() * 2 ** 31));
  }

  get greedy(): boolean {
    return !this.opts.temperature;
  }

  next(logits: Float32Array, seen: readonly number[]): number {
    const { repetitionPenalty = 1, temperature = 0, topK = 0, topP = 1 } = this.opts;
    applyRepetitionPenalty(logits, seen, repetitionPenalty);
    if (!temperature) return argmax(logits);
    // Candidates sorted by logit (desc), cut by top-k, then softmax at temperature, then nucleus cut.
    let idx = Array.from(logits.keys()).filter((i) => Number.isFinite(logits[i]));
    idx.sort((a, b) => logits[b] - logits[a] || a - b);
    if (topK > 0 && topK < idx.length) idx = idx.slice(0, topK);
    const max = logits[idx[0]];
    const p = idx.map((i) => Math.exp((logits[i] - max) / temperature));
    const z = p.reduce((a, b) => a + b, 0);
    let keep = idx.length;
    if (topP < 1) {
      let cum = 0;
      for (let k = 0; k < idx.length; k++) {
        cum += p[k] / z;
        // Keep the smallest prefix whose mass reaches topP (always at least one token).
        if (cum >= topP) {
          keep = k + 1;
          break;
        }
      }
    }
    const mass = p.slice(0, keep).reduce((a, b) => a + b, 0);
    let u = this.rng() * mass;
    for (let k = 0; k < keep; k++) {
      u -= p[k];
      if (u < 0) return idx[k];
    }
    return idx[keep - 1];
  }
}
