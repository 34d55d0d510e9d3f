/** The timing stages shown in bars and charts, in pipeline order, with one colour each (shared by page and report). */
import type { GenerationMode, TimingBreakdown } from '../types';

export type StageKey = 'sharerPrefillMs' | 'receiverPrefillMs' | 'fuseMs' | 'relayMs' | 'decodeMs';

export const STAGES: { key: StageKey; label: string; color: string }[] = [
  { key: 'sharerPrefillMs', label: 'sharer prefill', color: '#8e6bbf' },
  { key: 'relayMs', label: 'relay (sharer writes hint)', color: '#d0574b' },
  { key: 'receiverPrefillMs', label: 'receiver prefill', color: '#3b82c4' },
  { key: 'fuseMs', label: 'fuse', color: '#d99a1e' },
  { key: 'decodeMs', label: 'decode', color: '#3aa170' },
];

export const MODE_LABELS: Record<GenerationMode, string> = {
  receiver: 'Receiver alone',
  'text-relay': 'Text relay',
  c2c: 'C2C (cache-to-cache)',
  sharer: 'Sharer alone',
};

export const MODE_COLORS: Record<GenerationMode, string> = {
  receiver: '#3b82c4',
  'text-relay': '#d0574b',
  c2c: '#3aa170',
  sharer: '#8e6bbf',
};

/** Time not covered by the named stages (tokenisation, scheduling), so a bar always sums to the total. */
export function otherMs(t: Pick<TimingBreakdown, StageKey | 'totalMs'>): number {
  return Math.max(0, t.totalMs - STAGES.reduce((a, s) => a + (t[s.key] || 0), 0));
}
