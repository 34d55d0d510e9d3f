/**
 * The conversation cache behind exact multi-turn prefix reuse: per engine, the last prompt's raw receiver KV,
 * raw sharer KV and fused KV (kept in their hosts under handles), each with the token ids (and masks, fuse
 * ranges) it covers. A new prompt reuses the longest common token prefix — ids are compared, not text, since
 * chat templates may re-render earlier turns (Qwen3 drops the think block of past assistant turns). Bounded:
 * one conversation (one entry per kind); a new one replaces it; dispose or a failed request evicts it.
 */
import type { HostApi, ModelRole } from '../types';

export type CacheKind = 'receiver' | 'sharer' | 'fused';

export interface CachedKV {
  host: HostApi;
  role: ModelRole;
  handle: number;
  /** Token ids the kept KV covers (and the mask and fuse ranges they were computed with, where any). */
  ids: number[];
  mask?: number[];
  ranges?: [number, number][];
  /** A fused entry also depends on the sharer's sequence (they differ for cross-tokenizer pairs). */
  sharer?: { ids: number[]; mask?: number[] };
}

/** Length of the common prefix of two id sequences (and of their masks: a missing mask is all ones). */
export function commonPrefix(a: { ids: number[]; mask?: number[] }, b: { ids: number[]; mask?: number[] }): number {
  const n = Math.min(a.ids.length, b.ids.length);
  let i = 0;
  while (i < n && a.ids[i] === b.ids[i] && (a.mask?.[i] ?? 1) === (b.mask?.[i] ?? 1)) i++;
  return i;
}

/** Fuse ranges clipped to [0, n) (to compare what two prompts fused within their shared prefix). */
function clipRanges(r: [number, number][] | undefined, n: number): string {
  if (!r) return `all:${n}`;
  return r.map(([a, b]) => [a, Math.min(b, n)]).filter(([a, b]) => b > a).join(';');
}

export class ConversationCache {
  private readonly entries = new Map<CacheKind, CachedKV>();

  /**
   * Removes and returns the reusable part of `kind` for a prompt: `{ handle, tokens }` when at least one token
   * matches on the same host (the handle is then the caller's, to pass as a base that the host consumes).
   * A fused entry also needs the same sharer sequence and fuse ranges within the shared prefix.
   */
  claim(kind: CacheKind, host: HostApi, want: Omit<CachedKV, 'host' | 'role' | 'handle'>): { handle: number; tokens: number } | undefined {
    const e = this.entries.get(kind);
    if (!e || e.host !== host) return undefined;
    let tokens = commonPrefix(e, want);
    if (e.sharer || want.sharer) tokens = Math.min(tokens, e.sharer && want.sharer ? commonPrefix(e.sharer, want.sharer) : 0);
    if (kind === 'fused' && tokens > 0 && clipRanges(e.ranges, tokens) !== clipRanges(want.ranges, tokens)) tokens = 0;
    if (tokens === 0) return undefined;
    this.entries.delete(kind);
    return { handle: e.handle, tokens };
  }

  /** Stores the KV of the prompt just run, releasing what it replaces. */
  async put(kind: CacheKind, entry: CachedKV): Promise<void> {
    const old = this.entries.get(kind);
    this.entries.set(kind, entry);
    if (old && !(old.host === entry.host && old.handle === entry.handle)) await old.host.release(old.handle).catch(() => undefined);
  }

  /** Releases everything (a failed request, a crashed host, dispose). */
  async evict(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => e.host.release(e.handle).catch(() => undefined)));
  }

  get size(): number {
    return this.entries.size;
  }
}
