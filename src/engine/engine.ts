/**
 * The C2CEngine implementation shared by every topology: it orchestrates the four modes over one or two
 * HostApi instances (workers, one worker, or in-process). C2C follows the reference flow: both models prefill
 * the prompt minus its last token concurrently, every receiver layer is fused with its mapped sharer layer,
 * then the receiver runs the last prompt token on the fused cache and decodes. Requests run one at a time.
 */
import { AbortError, ContextOverflowError, DisposedError, InvalidInputError, throwIfAborted } from '../errors';
import type { TokenAligner } from '../align/token-aligner';
import { DEFAULT_RELAY_TEMPLATE, relayReceiverMessages, relaySharerMessages } from './relay';
import {
  GENERATION_MODES,
  type C2CEngine, type ChatMessage, type DeviceReport, type FuserConfig, type GenerateOptions, type GenerateOutcome, type GenerationMode,
  type GenerationResult, type HostApi, type ModelInfo, type ModelRole, type PrefillResult, type RelayTemplate, type StreamEvent,
  type TimingBreakdown, type TokenEvent,
} from '../types';
import { createChatCompletions } from './openai';
import { validateMessages, validateOptions } from './validate';

export const DEFAULT_MAX_NEW_TOKENS = 64;
export const DEFAULT_RELAY_MAX_TOKENS = 64;

export interface EngineParts {
  /** Returns the live hosts (a crashed worker is replaced on the next call). May be the same object twice. */
  hosts(): Promise<{ sharer: HostApi; receiver: HostApi }>;
  device: DeviceReport;
  /** The OpenAI-shaped model id of this pair. */
  modelId: string;
  info: { sharer: ModelInfo; receiver: ModelInfo };
  fuser: FuserConfig;
  relay?: Partial<RelayTemplate>;
  /** Present when the pair's tokenizers differ (fuser alignment enabled). */
  aligner?: TokenAligner;
  dispose(): Promise<void>;
}

const now = () => performance.now();

function emptyTiming(device: DeviceReport): TimingBreakdown {
  return { sharerPrefillMs: 0, receiverPrefillMs: 0, fuseMs: 0, relayMs: 0, ttftMs: 0, decodeMs: 0, decodeTokensPerS: 0, totalMs: 0, device };
}

export class Engine implements C2CEngine {
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private readonly relay: RelayTemplate;

  readonly chat: C2CEngine['chat'];

  constructor(private readonly parts: EngineParts) {
    this.relay = { ...DEFAULT_RELAY_TEMPLATE, ...parts.relay };
    this.chat = { completions: createChatCompletions(this) };
  }

  get device(): DeviceReport {
    return this.parts.device;
  }

  get modelId(): string {
    return this.parts.modelId;
  }

  generate(messages: ChatMessage[], opts: GenerateOptions = {}): Promise<GenerationResult> {
    if (this.disposed) return Promise.reject(new DisposedError());
    try {
      validateMessages(messages);
      validateOptions(opts);
    } catch (e) {
      return Promise.reject(e);
    }
    const job = () => this.run(opts.mode ?? 'c2c', messages, opts);
    const p = this.queue.then(job, job);
    this.queue = p.catch(() => undefined);
    return p;
  }

  async *stream(messages: ChatMessage[], opts: Omit<GenerateOptions, 'onToken'> = {}): AsyncIterable<StreamEvent> {
    const pending: StreamEvent[] = [];
    let wake: (() => void) | null = null;
    let finished = false;
    let failure: unknown = null;
    // Our own controller so leaving the loop early stops the generation too.
    const ctl = new AbortController();
    const onOuter = () => ctl.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onOuter, { once: true });
    if (opts.signal?.aborted) ctl.abort(opts.signal.reason);
    const push = (e: StreamEvent) => {
      pending.push(e);
      wake?.();
    };
    this.generate(messages, { ...opts, signal: ctl.signal, onToken: push }).then(
      (result) => {
        push({ type: 'done', result });
        finished = true;
        wake?.();
      },
      (e) => {
        failure = e;
        finished = true;
        wake?.();
      },
    );
    try {
      for (;;) {
        if (pending.length) {
          const e = pending.shift()!;
          yield e;
          if (e.type === 'done') return;
          continue;
        }
        if (finished) {
          if (failure) throw failure;
          return;
        }
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onOuter);
      if (!finished) ctl.abort(new AbortError('the stream consumer stopped'));
    }
  }

  async compare(
    messages: ChatMessage[],
    opts: Omit<GenerateOptions, 'mode'> & { modes?: GenerationMode[] } = {},
  ): Promise<Record<GenerationMode, GenerationResult>> {
    const out: Partial<Record<GenerationMode, GenerationResult>> = {};
    for (const mode of opts.modes ?? GENERATION_MODES) out[mode] = await this.generate(messages, { ...opts, mode });
    return out as Record<GenerationMode, GenerationResult>;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.queue.catch(() => undefined);
    await this.parts.dispose();
  }

  private async run(mode: GenerationMode, messages: ChatMessage[], opts: GenerateOptions): Promise<GenerationResult> {
    if (this.disposed) throw new DisposedError();
    throwIfAborted(opts.signal);
    const t0 = now();
    const hosts = await this.parts.hosts();
    const timing = emptyTiming(this.parts.device);
    const maxNew = opts.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
    const emit = (role: ModelRole) => (e: { tokenId: number; text: string; index: number }) => {
      const ev: TokenEvent = { type: 'token', mode, source: role, tokenId: e.tokenId, text: e.text, index: e.index };
      try {
        opts.onToken?.(ev);
      } catch {
        // A throwing listener must not kill the generation; streams/UI errors are the caller's.
      }
    };
    const answer = async (role: ModelRole, handle: number | null, ids: number[], startPos: number, promptIds: number[]) => {
      const tGen = now();
      const o = await hosts[role].generate(
        role,
        { handle, ids, startPos, maxNewTokens: maxNew, sampling: opts.sampling, seenIds: promptIds, stop: opts.stop, signal: opts.signal },
        emit(role),
      );
      timing.ttftMs = tGen - t0 + o.firstTokenMs;
      return o;
    };
    let outcome: GenerateOutcome;
    let promptIds: number[];
    let hint: GenerationResult['hint'];

    if (mode === 'receiver' || mode === 'sharer') {
      promptIds = await hosts[mode].encodeChat(mode, messages);
      this.checkPrompt(mode, promptIds);
      outcome = await answer(mode, null, promptIds, 0, promptIds);
    } else if (mode === 'text-relay') {
      const sharerIds = await hosts.sharer.encodeChat('sharer', relaySharerMessages(messages, this.relay));
      this.checkPrompt('sharer', sharerIds);
      const tRelay = now();
      const h = await hosts.sharer.generate(
        'sharer',
        { handle: null, ids: sharerIds, startPos: 0, maxNewTokens: opts.relayMaxTokens ?? DEFAULT_RELAY_MAX_TOKENS, sampling: opts.sampling, seenIds: sharerIds, signal: opts.signal },
        emit('sharer'),
      );
      timing.relayMs = now() - tRelay;
      if (h.finishReason === 'aborted') throw new AbortError('text relay was aborted while the sharer wrote its hint');
      // Like the training data's decode_answer: the text before eos, stripped.
      hint = { text: h.text.trim(), tokenIds: h.tokenIds };
      promptIds = await hosts.receiver.encodeChat('receiver', relayReceiverMessages(messages, hint.text, this.relay));
      this.checkPrompt('receiver', promptIds);
      outcome = await answer('receiver', null, promptIds, 0, promptIds);
    } else {
      ({ outcome, promptIds } = await this.c2c(hosts, messages, opts, timing, answer));
    }

    const total = now() - t0;
    timing.totalMs = total;
    timing.decodeMs = outcome.decodeMs;
    timing.decodeTokensPerS = outcome.tokenIds.length > 1 && outcome.decodeMs > 0 ? ((outcome.tokenIds.length - 1) * 1000) / outcome.decodeMs : 0;
    const answerRole: ModelRole = mode === 'sharer' ? 'sharer' : 'receiver';
    if (answerRole === 'sharer') timing.sharerPrefillMs = outcome.firstTokenMs;
    else if (mode !== 'c2c') timing.receiverPrefillMs = outcome.firstTokenMs;
    return { mode, text: outcome.text, tokenIds: outcome.tokenIds, promptIds, hint, finishReason: outcome.finishReason, timing };
  }

  private checkPrompt(role: ModelRole, ids: number[]): void {
    const max = this.parts.info[role].maxPositions;
    if (ids.length >= max) {
      // At least one position must remain for the answer.
      throw new ContextOverflowError(`the ${role} prompt has ${ids.length} tokens; the ${role} context holds ${max} (one must stay free for the answer)`, {
        field: 'messages',
        expected: max - 1,
        actual: ids.length,
      });
    }
  }

  private async c2c(
    hosts: { sharer: HostApi; receiver: HostApi },
    messages: ChatMessage[],
    opts: GenerateOptions,
    timing: TimingBreakdown,
    answer: (role: ModelRole, handle: number | null, ids: number[], startPos: number, promptIds: number[]) => Promise<GenerateOutcome>,
  ): Promise<{ outcome: GenerateOutcome; promptIds: number[] }> {
    const sameHost = hosts.sharer === hosts.receiver;
    const signal = opts.signal;
    let receiverIds: number[], sharerIds: number[];
    let masks: { receiver: number[]; sharer: number[] } | undefined;
    let fuseRanges: [number, number][] | undefined;
    if (this.parts.aligner) {
      // Different tokenizers: aligned, equal-length sequences with padding masks; positions are 0..L-1.
      const a = await this.parts.aligner.alignChat(messages);
      receiverIds = a.receiverIds;
      sharerIds = a.sharerIds;
      masks = { receiver: a.receiverMask, sharer: a.sharerMask };
      fuseRanges = a.messageRanges;
    } else {
      receiverIds = await hosts.receiver.encodeChat('receiver', messages);
      sharerIds = receiverIds; // same tokenizer: the sharer reads the receiver's ids and template
    }
    this.checkPrompt('receiver', receiverIds);
    const n = receiverIds.length;
    // Both prefills run at once; if either fails (or is aborted), the other's kept KV is released before rethrowing.
    const settled = await Promise.allSettled([
      timed(() => hosts.receiver.prefill('receiver', { ids: receiverIds.slice(0, -1), mask: masks?.receiver.slice(0, -1), keep: true, signal })),
      timed(() =>
        hosts.sharer.prefill('sharer', { ids: sharerIds.slice(0, -1), mask: masks?.sharer.slice(0, -1), keep: sameHost, returnKV: !sameHost, signal }),
      ),
    ]);
    // Handles never repeat, so releasing one that a later step consumed is a no-op.
    const held: [HostApi, number][] = [];
    if (settled[0].status === 'fulfilled' && settled[0].value.value.handle !== undefined) held.push([hosts.receiver, settled[0].value.value.handle]);
    if (settled[1].status === 'fulfilled' && settled[1].value.value.handle !== undefined) held.push([hosts.sharer, settled[1].value.value.handle]);
    const releaseHeld = () => Promise.all(held.map(([h, handle]) => h.release(handle).catch(() => undefined)));
    const failed = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed) {
      await releaseHeld();
      throw failed.reason;
    }
    const [r, s] = settled.map((x) => (x as PromiseFulfilledResult<{ value: PrefillResult; ms: number }>).value);
    timing.receiverPrefillMs = r.value.ms;
    timing.sharerPrefillMs = s.value.ms;
    try {
      const sharer = sameHost ? { handle: s.value.handle! } : { kv: s.value.kv! };
      const tFuse = now();
      // Cross-tokenizer: only message sections are fused (template sections keep the receiver's KV).
      const ranges = fuseRanges?.map(([a, b]): [number, number] => [a, Math.min(b, n - 1)]).filter(([a, b]) => b > a);
      await hosts.receiver.fuse({ receiverHandle: r.value.handle!, sharer, ranges, signal });
      timing.fuseMs = now() - tFuse;
      const outcome = await answer('receiver', r.value.handle!, [receiverIds[n - 1]], n - 1, receiverIds);
      return { outcome, promptIds: receiverIds };
    } finally {
      await releaseHeld();
    }
  }
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t = now();
  const value = await f();
  return { value, ms: now() - t };
}
