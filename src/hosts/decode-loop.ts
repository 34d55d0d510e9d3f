/**
 * The decode loop of one model: runs the remaining prompt tokens on a starting cache, then samples token by
 * token (our own loop rather than transformers.js `generate()`: it gives the fused-cache hand-off, per-token
 * streaming, seeded sampling and a per-request AbortSignal). Stops at eos, at the token budget or the context
 * end, or when aborted (a partial result once at least one token exists).
 */
import { throwIfAborted } from '../errors';
import type { GenerateOutcome, GenerateRequest, HostTokenEvent } from '../types';
import { disposeTensors, type CausalLM, type PastKV } from '../models/causal-lm';
import { TokenSampler } from './sampling';

const now = () => performance.now();

export interface DecodeStart {
  /** Past KV to start from (consumed: disposed when the loop ends), or null for an empty cache. */
  past: PastKV | null;
  /** Attention mask over the past tokens (padded cross-tokenizer prefixes: pads are never attended). */
  mask?: number[];
}

export async function decodeLoop(m: CausalLM, start: DecodeStart, req: GenerateRequest, onToken?: (e: HostTokenEvent) => void): Promise<GenerateOutcome> {
  const t0 = now();
  let { past, mask } = start;
  const sampler = new TokenSampler(req.sampling);
  const seen = [...req.seenIds];
  const out: number[] = [];
  const eos = new Set(m.info.eosIds);
  let ids = req.ids, pos = req.startPos, text = '', firstAt = 0;
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
      if (past && past !== step.present) disposeTensors(past);
      past = m.pastFromPresent(step.present);
      pos += ids.length;
      const tok = sampler.next(step.logits, seen);
      if (out.length === 0) firstAt = now();
      out.push(tok);
      seen.push(tok);
      // Emit the text this token completes; hold back while a multi-byte character is unfinished.
      const full = m.decode(out);
      const delta = full.endsWith('\uFFFD') ? '' : full.slice(text.length);
      if (!full.endsWith('\uFFFD')) text = full;
      onToken?.({ tokenId: tok, text: delta, index: out.length - 1 });
      if (eos.has(tok)) {
        finishReason = 'eos';
        break;
      }
      ids = [tok];
    }
  } finally {
    disposeTensors(past);
  }
  const end = now();
  return {
    tokenIds: out,
    text: m.decode(out),
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
