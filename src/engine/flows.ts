/**
 * How each mode turns a prompt into an answer over the hosts, with exact prefix reuse (prefix-cache.ts):
 * every prompt is prefilled over ids[:-1] (continuing a cached prefix when one matches), C2C fuses those
 * tokens (only the ones after a cached fused prefix), and the last prompt token starts the decode. Without
 * reuse the same steps run from scratch and nothing is kept. Every handle a failed request holds is released.
 */
import { AbortError } from '../errors';
import type { AlignedChat, TokenAligner } from '../align/token-aligner';
import type { ChatMessage, GenerateOutcome, HostApi, ModelRole, PrefillResult, TimingBreakdown } from '../types';
import type { ConversationCache } from './prefix-cache';

type Hosts = { sharer: HostApi; receiver: HostApi };

export interface FlowContext {
  hosts: Hosts;
  /** Filled with the prompt tokens each step took from the cache. */
  reused: { receiver: number; sharer: number; fused: number };
  /** null: reuse disabled (nothing is kept between requests). */
  cache: ConversationCache | null;
  timing: TimingBreakdown;
  signal?: AbortSignal;
  /** Runs the answering model from a kept handle over `ids` (the last prompt token) at `startPos`. */
  answer(role: ModelRole, handle: number, ids: number[], startPos: number, promptIds: number[], borrow: boolean): Promise<GenerateOutcome>;
}

const now = () => performance.now();

/** Handles a request holds, released on failure (handles never repeat: releasing a consumed one is a no-op). */
class Held {
  private readonly list: [HostApi, number][] = [];
  add(host: HostApi, handle: number | undefined): void {
    if (handle !== undefined) this.list.push([host, handle]);
  }
  async releaseAll(): Promise<void> {
    await Promise.all(this.list.map(([h, handle]) => h.release(handle).catch(() => undefined)));
  }
}

/** Prefill of ids[:-1] for `role`, from the cached prefix when one matches; returns the kept handle. */
async function prefillPrompt(
  ctx: FlowContext,
  role: ModelRole,
  ids: number[],
  held: Held,
  extra: { mask?: number[]; returnFromFused?: number; returnKV?: boolean } = {},
): Promise<PrefillResult & { tokens: number }> {
  const host = ctx.hosts[role];
  const want = { ids: ids.slice(0, -1), mask: extra.mask?.slice(0, -1) };
  const base = ctx.cache?.claim(role, host, want);
  held.add(host, base?.handle);
  const from = base?.tokens ?? 0;
  const r = await host.prefill(role, {
    ids: want.ids.slice(from),
    mask: want.mask?.slice(from),
    positions: want.ids.slice(from).map((_, i) => from + i),
    base,
    keep: true,
    returnKV: extra.returnKV,
    returnFrom: extra.returnFromFused,
    signal: ctx.signal,
  });
  held.add(host, r.handle);
  ctx.reused[role] = from;
  return { ...r, tokens: from };
}

/** One model answering its own prompt (receiver / sharer modes, and each half of text relay). */
export async function answerPrompt(ctx: FlowContext, role: ModelRole, ids: number[], onPrefill?: (ms: number) => void): Promise<GenerateOutcome> {
  const held = new Held();
  try {
    const p = await prefillPrompt(ctx, role, ids, held);
    onPrefill?.(p.ms);
    const outcome = await ctx.answer(role, p.handle!, [ids[ids.length - 1]], ids.length - 1, ids, ctx.cache !== null);
    if (ctx.cache) await ctx.cache.put(role, { host: ctx.hosts[role], role, handle: p.handle!, ids: ids.slice(0, -1) });
    return outcome;
  } catch (e) {
    await held.releaseAll();
    await ctx.cache?.evict();
    throw e;
  }
}

export interface C2CPrompt {
  receiverIds: number[];
  sharerIds: number[];
  masks?: { receiver: number[]; sharer: number[] };
  /** Cross-tokenizer: only message sections are fused. */
  fuseRanges?: [number, number][];
}

/** The prompt both models prefill: the receiver's ids for both (same tokenizer) or the aligned pair. */
export async function c2cPrompt(hosts: Hosts, messages: ChatMessage[], aligner?: TokenAligner): Promise<C2CPrompt> {
  if (!aligner) {
    const receiverIds = await hosts.receiver.encodeChat('receiver', messages);
    return { receiverIds, sharerIds: receiverIds }; // same tokenizer: the sharer reads the receiver's ids and template
  }
  const a: AlignedChat = await aligner.alignChat(messages);
  return { receiverIds: a.receiverIds, sharerIds: a.sharerIds, masks: { receiver: a.receiverMask, sharer: a.sharerMask }, fuseRanges: a.messageRanges };
}

/** C2C: both prefills concurrently, fuse every receiver layer with its mapped sharer layer, decode on the fused cache. */
export async function c2cAnswer(ctx: FlowContext, p: C2CPrompt): Promise<GenerateOutcome> {
  const { hosts, cache, timing, signal } = ctx;
  const sameHost = hosts.sharer === hosts.receiver;
  const n = p.receiverIds.length;
  const ranges = p.fuseRanges?.map(([a, b]): [number, number] => [a, Math.min(b, n - 1)]).filter(([a, b]) => b > a);
  const held = new Held();
  try {
    // The fused prefix needs both sequences (and the fuse ranges) equal up to where it is reused.
    const receiverWant = { ids: p.receiverIds.slice(0, -1), mask: p.masks?.receiver.slice(0, -1) };
    const sharerWant = { ids: p.sharerIds.slice(0, -1), mask: p.masks?.sharer.slice(0, -1) };
    const fusedWant = { ...receiverWant, ranges, sharer: sharerWant };
    const fusedBase = cache?.claim('fused', hosts.receiver, fusedWant);
    held.add(hosts.receiver, fusedBase?.handle);
    const fusedFrom = fusedBase?.tokens ?? 0;
    ctx.reused.fused = fusedFrom;
    // Both prefills run at once; whichever fails, the other's KV is released (Held) before rethrowing.
    const settled = await Promise.allSettled([
      prefillPrompt(ctx, 'receiver', p.receiverIds, held, { mask: p.masks?.receiver }),
      prefillPrompt(ctx, 'sharer', p.sharerIds, held, { mask: p.masks?.sharer, returnKV: !sameHost, returnFromFused: fusedFrom }),
    ]);
    const failed = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed) throw failed.reason;
    const [r, s] = settled.map((x) => (x as PromiseFulfilledResult<PrefillResult & { tokens: number }>).value);
    timing.receiverPrefillMs = r.ms;
    timing.sharerPrefillMs = s.ms;
    const tFuse = now();
    const sharer = sameHost ? { handle: s.handle! } : { kv: s.kv! };
    const reuse = cache !== null;
    const f = await hosts.receiver.fuse({ receiverHandle: r.handle!, sharer, ranges, signal, keepInputs: reuse, fusedBase });
    timing.fuseMs = now() - tFuse;
    const fused = f.handle ?? r.handle!;
    held.add(hosts.receiver, fused);
    const outcome = await ctx.answer('receiver', fused, [p.receiverIds[n - 1]], n - 1, p.receiverIds, reuse);
    if (cache) {
      await cache.put('receiver', { host: hosts.receiver, role: 'receiver', handle: r.handle!, ...receiverWant });
      await cache.put('sharer', { host: hosts.sharer, role: 'sharer', handle: s.handle!, ...sharerWant });
      await cache.put('fused', { host: hosts.receiver, role: 'receiver', handle: fused, ...fusedWant });
    } else await held.releaseAll();
    return outcome;
  } catch (e) {
    await held.releaseAll();
    await cache?.evict();
    throw e;
  }
}

/** Text relay: the sharer writes its hint (its own cached prompt), then the receiver answers with it. */
export async function relayHint(ctx: FlowContext, sharerIds: number[], write: (handle: number, borrow: boolean) => Promise<GenerateOutcome>): Promise<GenerateOutcome> {
  const held = new Held();
  try {
    const p = await prefillPrompt(ctx, 'sharer', sharerIds, held);
    const h = await write(p.handle!, ctx.cache !== null);
    if (h.finishReason === 'aborted') throw new AbortError('text relay was aborted while the sharer wrote its hint');
    if (ctx.cache) await ctx.cache.put('sharer', { host: ctx.hosts.sharer, role: 'sharer', handle: p.handle!, ids: sharerIds.slice(0, -1) });
    return h;
  } catch (e) {
    await held.releaseAll();
    await ctx.cache?.evict();
    throw e;
  }
}
