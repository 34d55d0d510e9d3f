/**
 * Reads the PyTorch accuracies per mode from the training report (`models/report.json`), so the benchmark
 * can print them beside the measured ones and flag mismatches. Tolerates the common shapes
 * (`{accuracy: {mode: x}}`, `{modes: {mode: {accuracy: x}}}`, mode aliases such as `text_relay`/`t2t`).
 */
import type { GenerationMode } from '../types';

export type ReferenceAccuracy = Partial<Record<GenerationMode, number>>;

const ALIASES: Record<string, GenerationMode> = {
  receiver: 'receiver', receiver_only: 'receiver', 'receiver-only': 'receiver', receiveronly: 'receiver',
  sharer: 'sharer', sharer_only: 'sharer', 'sharer-only': 'sharer',
  'text-relay': 'text-relay', text_relay: 'text-relay', relay: 'text-relay', t2t: 'text-relay', textrelay: 'text-relay',
  c2c: 'c2c',
};

function asAccuracy(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v
    : v && typeof v === 'object' ? (v as Record<string, unknown>).accuracy ?? (v as Record<string, unknown>).acc : undefined;
  if (typeof n !== 'number' || !Number.isFinite(n)) return undefined;
  return n > 1 ? n / 100 : n;
}

/** Depth-first search for the first object whose keys name at least two modes with accuracies. */
export function referenceAccuracies(report: unknown, depth = 0): ReferenceAccuracy {
  if (!report || typeof report !== 'object' || depth > 4) return {};
  const obj = report as Record<string, unknown>;
  const found: ReferenceAccuracy = {};
  for (const [k, v] of Object.entries(obj)) {
    const mode = ALIASES[k.toLowerCase()];
    const acc = mode ? asAccuracy(v) : undefined;
    if (mode && acc !== undefined) found[mode] = acc;
  }
  if (Object.keys(found).length >= 2) return found;
  // Prefer a "test" block (the held-out split), then an explicit "accuracy" / "eval" block, then any nested object.
  const rank = (k: string) => (/^test$/i.test(k) ? 2 : Number(/acc|eval|mode|result/i.test(k)));
  const keys = Object.keys(obj).sort((a, b) => rank(b) - rank(a));
  for (const k of keys) {
    const r = referenceAccuracies(obj[k], depth + 1);
    if (Object.keys(r).length >= 2) return r;
  }
  return {};
}

export async function fetchReferenceAccuracies(url: string): Promise<ReferenceAccuracy> {
  try {
    const res = await fetch(url);
    return res.ok ? referenceAccuracies(await res.json()) : {};
  } catch {
    return {};
  }
}
