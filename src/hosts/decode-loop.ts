/**
 * The decode loop of one model: runs the remaining prompt tokens on a starting cache, then samples token by
 * token (our own loop rather than transformers.js `generate()`: it gives the fused-cache hand-off, per-token
 * streaming, seeded sampling and a per-request AbortSignal). Stops at eos, at a stop sequence (the text is cut
 * before it), at the token budget or the context end, or when aborted (a partial result once a token exists).
 */
import { throwIfAborted } from '../errors';
import type { GenerateOutcome, GenerateRequest, HostTokenEvent } from '../types';
import { disposeTensors, type CausalLM, type PastKV } from '../models/causal-lm';
import { TokenSampler } from './sampling';
import { firstStop, heldBackLength } from './stop-sequences';

const cutAtStop = (t: string, stops: readonly string[]) => {
  const at = firstStop(t, stops);
  return at >= 0 ? t.slice(0, at) : t;
};

const now = () => performance.now();

export interface DecodeStart {
  /** Past KV to start from (consumed: disposed when the loop ends), or null for an empty cache. */
  past: PastKV | null;
  /** Attention mask over the past tokens (padded cross-tokenizer prefixes: pads are never attended). */
  mask?: number[];
  /** The starting past belongs to a kept cache: never dispose it. */
  borrowed?: boolean;
}

export async function decodeLoop(m: CausalLM, start: DecodeStart, req: GenerateRequest,
  onToken?: (e: HostTokenEvent) => void): Promise<GenerateOutcome> {
  const t0 = now();
  let { past, mask } = start;
  const keep = start.borrowed ? start.past : null;
  const sampler = new TokenSampler(req.sampling);
  const seen = [...req.seenIds];
  const out: number[] = [];
  const eos = new Set(m.info.eosIds);
  const stops = req.stop ?? [];
  // `text`: the complete decoded text so far (cut at a stop sequence); `emitted`: how much of it was streamed.
  let ids = req.ids, pos = req.startPos, text = '', emitted = 0, firstAt = 0;
  let finishReason: GenerateOutcome['finishReason'] = 'length';
  try {
    const limit = Math.min(req.maxNewTokens, m.info.maxPositions - (req.startPos + req.ids.length) + 1);
    while (out.length < limit) {
      // Let queued messages (an abort arriving through a MessagePort) run between steps.
      if (req.signal) await yieldToEventLoop();
      if (req.signal?.aborted) {
        if (out.length === 0) throwIfAborted(req.signal);
        finishReason = 'aborted';
        break;
      }
      if (mask) mask = [...mask, ...ids.map(() => 1)];
      const step = await m.forward(ids, ids.map((_, i) => pos + i), past, mask);
      if (past && past !== step.present && past !== keep) disposeTensors(past);
      past = m.pastFromPresent(step.present);
      pos += ids.length;
      const tok = sampler.next(step.logits, seen, out);
      if (out.length === 0) firstAt = now();
      out.push(tok);
      seen.push(tok);
      // Stream the text this token completes; hold back an unfinished multi-byte character and any tail that
      // could still become a stop sequence. The last token's event flushes whatever is left.
      const full = m.decode(out);
      let done = false;
      if (!full.endsWith('\uFFFD')) text = full;
      const stopAt = firstStop(text, stops);
      if (stopAt >= 0) {
        text = text.slice(0, stopAt);
        finishReason = 'stop';
        done = true;
      } else if (eos.has(tok)) {
        finishReason = 'eos';
        done = true;
      } else if (out.length >= limit) done = true;
      if (done && stopAt < 0) text = full;
      const safe = done ? text.length : text.length - heldBackLength(text, stops);
      onToken?.({ tokenId: tok, text: text.slice(emitted, Math.max(safe, emitted)), index: out.length - 1 });
      emitted = Math.max(safe, emitted);
      if (done) break;
      ids = [tok];
    }
  } finally {
    if (past !== keep) disposeTensors(past);
  }
  const end = now();
  // Aborted: what was decoded, cut at a stop sequence (the stream may have held its tail back).
  const finalText = finishReason === 'aborted' ? cutAtStop(m.decode(out), stops) : text;
  return {
    tokenIds: out,
    text: finalText,
    finishReason,
    firstTokenMs: out.length ? firstAt - t0 : end - t0,
    decodeMs: out.length ? end - firstAt : 0,
  };
}

/** A macrotask turn (MessageChannel, not setTimeout: no 4 ms clamp), so pending messages are delivered. */
function yieldToEventLoop(): Promise<void> {
  if (typeof MessageChannel === 'undefined') return new Promise((r) => setTimeout(r, 0));
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}
