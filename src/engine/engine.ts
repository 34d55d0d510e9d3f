/**
 * The C2CEngine implementation shared by every topology: it orchestrates the four modes over one or two
 * HostApi instances (workers, one worker, or in-process). C2C follows the reference flow: both models prefill
 * the prompt minus its last token concurrently, every receiver layer is fused with its mapped sharer layer,
 * then the receiver runs the last prompt token on the fused cache and decodes. Requests run one at a time.
 */
import { AbortError, ContextOverflowError, DisposedError, throwIfAborted } from '../errors';
import type { TokenAligner } from '../align/token-aligner';
import { DEFAULT_RELAY_TEMPLATE, relayReceiverMessages, relaySharerMessages } from './relay';
import { answerPrompt, c2cAnswer, c2cPrompt, relayHint, type FlowContext } from './flows';
import { ConversationCache } from './prefix-cache';
import {
  GENERATION_MODES,
  type C2CEngine, type ChatMessage, type DeviceReport, type FuserConfig, type GenerateOptions, type GenerateOutcome, type GenerationMode,
  type GenerationResult, type HostApi, type ModelInfo, type ModelRole, type RelayTemplate, type StreamEvent,
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
  /** Exact multi-turn prefix reuse (default on): the last conversation's KV stays in the hosts. */
  prefixReuse?: boolean;
  /** Fresh hosts with the pair loaded again (after a lost GPU device or a crash). */
  reload?(): Promise<void>;
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
  /** The last conversation's KV (exact prefix reuse); null when reuse is off. */
  private readonly cache: ConversationCache | null;

  constructor(private readonly parts: EngineParts) {
    this.relay = { ...DEFAULT_RELAY_TEMPLATE, ...parts.relay };
    this.cache = parts.prefixReuse === false ? null : new ConversationCache();
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

  /** Reloads the pair into fresh hosts (a new GPUDevice in the browser); queued behind the running request. */
  reload(): Promise<void> {
    if (this.disposed) return Promise.reject(new DisposedError());
    const job = async () => {
      await this.cache?.evict();
      await this.parts.reload?.();
    };
    const p = this.queue.then(job, job);
    this.queue = p.catch(() => undefined);
    return p;
  }

  resetChat(): Promise<void> {
    // Queued behind the running request, so a generation in flight keeps its handles.
    const job = async () => this.cache?.evict();
    const p = this.queue.then(job, job);
    this.queue = p.catch(() => undefined);
    return p;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.queue.catch(() => undefined);
    await this.cache?.evict();
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
    const answer = async (role: ModelRole, handle: number | null, ids: number[], startPos: number, promptIds: number[], borrow = false) => {
      const tGen = now();
      const o = await hosts[role].generate(
        role,
        { handle, ids, startPos, maxNewTokens: maxNew, sampling: opts.sampling, seenIds: promptIds, stop: opts.stop, signal: opts.signal, borrow },
        emit(role),
      );
      timing.ttftMs = tGen - t0 + o.firstTokenMs;
      return o;
    };
    const reused = { receiver: 0, sharer: 0, fused: 0 };
    const ctx: FlowContext = { hosts, cache: this.cache, reused, timing, signal: opts.signal, answer: (r, h, i, p, ids, b) => answer(r, h, i, p, ids, b) };
    let outcome: GenerateOutcome;
    let promptIds: number[];
    let hint: GenerationResult['hint'];

    if (mode === 'receiver' || mode === 'sharer') {
      promptIds = await hosts[mode].encodeChat(mode, messages);
      this.checkPrompt(mode, promptIds);
      outcome = await answerPrompt(ctx, mode, promptIds, (ms) => (timing[mode === 'sharer' ? 'sharerPrefillMs' : 'receiverPrefillMs'] = ms));
    } else if (mode === 'text-relay') {
      const sharerIds = await hosts.sharer.encodeChat('sharer', relaySharerMessages(messages, this.relay));
      this.checkPrompt('sharer', sharerIds);
      const tRelay = now();
      const h = await relayHint(ctx, sharerIds, (handle, borrow) =>
        hosts.sharer.generate(
          'sharer',
          {
            handle, ids: [sharerIds[sharerIds.length - 1]], startPos: sharerIds.length - 1, maxNewTokens: opts.relayMaxTokens ?? DEFAULT_RELAY_MAX_TOKENS,
            sampling: opts.sampling, seenIds: sharerIds, signal: opts.signal, borrow,
          },
          emit('sharer'),
        ),
      );
      timing.relayMs = now() - tRelay;
      // Like the training data's decode_answer: the text before eos, stripped.
      hint = { text: h.text.trim(), tokenIds: h.tokenIds };
      promptIds = await hosts.receiver.encodeChat('receiver', relayReceiverMessages(messages, hint.text, this.relay));
      this.checkPrompt('receiver', promptIds);
      outcome = await answerPrompt(ctx, 'receiver', promptIds, (ms) => (timing.receiverPrefillMs = ms));
    } else {
      const p = await c2cPrompt(hosts, messages, this.parts.aligner);
      this.checkPrompt('receiver', p.receiverIds);
      promptIds = p.receiverIds;
      outcome = await c2cAnswer(ctx, p);
    }

    const total = now() - t0;
    timing.totalMs = total;
    timing.decodeMs = outcome.decodeMs;
    timing.decodeTokensPerS = outcome.tokenIds.length > 1 && outcome.decodeMs > 0 ? ((outcome.tokenIds.length - 1) * 1000) / outcome.decodeMs : 0;
    return { mode, text: outcome.text, tokenIds: outcome.tokenIds, promptIds, hint, finishReason: outcome.finishReason, timing, reused };
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
}
