/**
 * Next-token selection from one row of logits: greedy (temperature 0 or absent), or sampling with
 * repetition penalty → temperature → top-k → top-p (the order of the reference `sample_token`), from a
 * seeded generator so a given seed reproduces the same tokens on every backend.
 */
import { InvalidInputError } from '../errors';
import type { SamplingOptions } from '../types';
import { seededRandom } from '../util/seeded-random';

/** The sampling generator: seeded mulberry32 (see src/util/seeded-random.ts). */
export const createRng = seededRandom;

export function validateSampling(s: SamplingOptions | undefined): void {
  if (!s) return;
  const bad = (field: string, actual: unknown, why: string) => {
    throw new InvalidInputError(`sampling.${field} ${why} (got ${String(actual)})`, { field: `sampling.${field}`, actual });
  };
  if (s.temperature !== undefined && !(s.temperature >= 0 && Number.isFinite(s.temperature))) bad('temperature', s.temperature,
    'must be a finite number >= 0');
  if (s.topK !== undefined && !(Number.isInteger(s.topK) && s.topK >= 0)) bad('topK', s.topK, 'must be an integer >= 0');
  if (s.topP !== undefined && !(s.topP > 0 && s.topP <= 1)) bad('topP', s.topP, 'must be in (0, 1]');
  if (s.repetitionPenalty !== undefined && !(s.repetitionPenalty > 0 && Number.isFinite(s.repetitionPenalty))) {
    bad('repetitionPenalty', s.repetitionPenalty, 'must be a finite number > 0');
  }
  for (const k of ['presencePenalty', 'frequencyPenalty'] as const) {
    const v = s[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= -2 && v <= 2)) bad(k, v, 'must be a number in [-2, 2]');
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

/** OpenAI-style penalties over the generated tokens: `presence` once per distinct id, `frequency` per occurrence. */
export function applyPresenceFrequency(logits: Float32Array, generated: readonly number[], presence: number, frequency: number): void {
  if (!presence && !frequency) return;
  const counts = new Map<number, number>();
  for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, n] of counts) if (id >= 0 && id < logits.length) logits[id] -= presence + frequency * n;
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

/**
 * The `k` largest finite logits, best first (ties: lower id first, as a stable full sort would order them),
 * through a size-k min-heap: O(V log k) instead of sorting the whole vocabulary.
 */
export function topKSorted(logits: Float32Array, k: number): number[] {
  const heap: number[] = [];
  // "a ranks below b": smaller logit, or the same logit and a larger id.
  const below = (a: number, b: number) => logits[a] < logits[b] || (logits[a] === logits[b] && a > b);
  const swap = (i: number, j: number) => ([heap[i], heap[j]] = [heap[j], heap[i]]);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && below(heap[l], heap[m])) m = l;
      if (r < heap.length && below(heap[r], heap[m])) m = r;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };
  for (let id = 0; id < logits.length && k > 0; id++) {
    if (!Number.isFinite(logits[id])) continue;
    if (heap.length < k) {
      heap.push(id);
      for (let i = heap.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1;
        if (!below(heap[i], heap[parent])) break;
        swap(i, parent);
        i = parent;
      }
    } else if (below(heap[0], id)) {
      heap[0] = id;
      down(0);
    }
  }
  return heap.sort((a, b) => (below(a, b) ? 1 : below(b, a) ? -1 : 0));
}

/** Candidates examined first; doubled until the sorted prefix decides the draw (rarely needed past 64). */
const FIRST_CANDIDATES = 64;

/** Picks a token; `logits` is modified in place (penalty), so pass a copy if the caller needs it. */
export class TokenSampler {
  private readonly rng: () => number;
  /** How many candidates the last sampled token needed sorted (a check that the vocabulary is not sorted whole). */
  lastSortedCandidates = 0;

  constructor(private readonly opts: SamplingOptions = {}) {
    validateSampling(opts);
    this.rng = createRng(opts.seed ?? Math.floor(Math.random() * 2 ** 31));
  }

  get greedy(): boolean {
    return !this.opts.temperature;
  }

  /**
   * Sorted by logit (desc), cut by top-k, softmax at temperature, nucleus cut, then one draw. Only a sorted
   * prefix is built: it grows until it holds the nucleus (top-p) and the drawn token, which for real logits
   * is a few dozen of a 150k vocabulary. The result equals that of sorting every finite logit.
   */
  /** `seen`: prompt + generated ids (repetition penalty); `generated`: this reply's ids (presence/frequency). */
  next(logits: Float32Array, seen: readonly number[], generated: readonly number[] = []): number {
    const { repetitionPenalty = 1, temperature = 0, topK = 0, topP = 1, presencePenalty = 0, frequencyPenalty = 0 } = this.opts;
    applyRepetitionPenalty(logits, seen, repetitionPenalty);
    applyPresenceFrequency(logits, generated, presencePenalty, frequencyPenalty);
    if (!temperature) return argmax(logits);
    let finite = 0;
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) {
      if (!Number.isFinite(logits[i])) continue;
      finite++;
      if (logits[i] > max) max = logits[i];
    }
    const limit = topK > 0 ? Math.min(topK, finite) : finite;
    const weight = (i: number) => Math.exp((logits[i] - max) / temperature);
    let z = 0;
    if (topK === 0 || limit === finite) for (let i = 0; i < logits.length; i++) if (Number.isFinite(logits[i])) z += weight(i);
    const u = this.rng();
    // With top-k the mass z is that of the top-k set, so the whole set is needed at once.
    for (let k = topK > 0 ? limit : Math.min(limit, FIRST_CANDIDATES); ; k = Math.min(limit, k * 2)) {
      const idx = topKSorted(logits, k);
      this.lastSortedCandidates = idx.length;
      const p = idx.map(weight);
      const complete = k === limit;
      if (topK > 0 && limit < finite) z = p.reduce((a, b) => a + b, 0);
      // Nucleus: the smallest prefix whose mass reaches topP (at least one token); all of the set without top-p.
      let keep = limit;
      if (topP < 1) {
        let cum = 0;
        keep = complete ? idx.length : -1;
        for (let j = 0; j < idx.length; j++) {
          cum += p[j] / z;
          if (cum >= topP) {
            keep = j + 1;
            break;
          }
        }
        if (keep < 0) continue; // the nucleus reaches past this prefix
      }
      const mass = keep === limit ? z : p.slice(0, keep).reduce((a, b) => a + b, 0);
      let t = u * mass;
      for (let j = 0; j < Math.min(keep, idx.length); j++) {
        t -= p[j];
        if (t < 0) return idx[j];
      }
      if (keep <= idx.length) return idx[keep - 1]; // rounding left t ≥ 0: the last kept token
    }
  }
}
