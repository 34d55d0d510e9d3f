/**
 * TokenAligner: aligned ids for a pair whose tokenizers differ (c2c-reference §3, train/align.py). Receiver
 * tokens are the base. The chat splits into template / message sections; template sections keep each model's
 * own tokens and the shorter side is right-padded with its pad token (masked out); in message sections every
 * receiver token is decoded alone and re-encoded by the sharer, keeping exactly one sharer token (`first`:
 * the first id; `longest`: the candidate whose decoded text is longest, first on ties). Both sequences share
 * positions 0..L-1 and only message tokens are fused.
 */
import { InvalidInputError } from '../errors';
import type { HostApi, ModelRole, TokenizerOp, TokenizerSpecials, ChatMessage } from '../types';

export type AlignStrategy = 'first' | 'longest';

export interface AlignedChat {
  receiverIds: number[];
  sharerIds: number[];
  /** 1 = real token, 0 = padding (never attended). */
  receiverMask: number[];
  sharerMask: number[];
  /** Shared position ids (0..L-1 over the padded length). */
  positions: number[];
  /** [start, end) token ranges of message sections: the only tokens fused cross-tokenizer. */
  messageRanges: [number, number][];
}

export interface TokenAligner {
  alignChat(messages: ChatMessage[]): Promise<AlignedChat>;
}

/** The tokenizer queries alignment needs, for one model (async: the tokenizer may live in a worker). */
export interface TokenizerAccess {
  render(messages: ChatMessage[]): Promise<string>;
  encodeTexts(texts: string[]): Promise<number[][]>;
  decodeEach(ids: number[]): Promise<string[]>;
  specials(): Promise<TokenizerSpecials & { specialTokens?: string[] }>;
}

export interface Section {
  kind: 'template' | 'message';
  text: string;
}

/**
 * Splits a rendered chat into alternating template/message sections: each non-empty message content is
 * searched for in order, and (as in the reference) must be followed by '<' or end the text.
 */
export function splitSections(text: string, messages: ChatMessage[]): Section[] {
  const out: Section[] = [];
  let cursor = 0;
  for (const [i, m] of messages.entries()) {
    if (!m.content) continue;
    let at = text.indexOf(m.content, cursor);
    while (at >= 0 && !(at + m.content.length === text.length || text[at + m.content.length] === '<')) at = text.indexOf(m.content, at + 1);
    if (at < 0) throw new InvalidInputError(`messages[${i}] content not found in the rendered chat template`, { field: `messages[${i}]` });
    out.push({ kind: 'template', text: text.slice(cursor, at) });
    out.push({ kind: 'message', text: m.content });
    cursor = at + m.content.length;
  }
  out.push({ kind: 'template', text: text.slice(cursor) });
  return out;
}

const codePoints = (s: string) => [...s].length;

/** One sharer token for one receiver token's text (train/align.py `map_token`). */
export function pickSharerToken(
  text: string,
  candidates: number[],
  candidateTexts: string[],
  strategy: AlignStrategy,
  sharerSpecial: Map<string, number>,
  sharerPad: number,
): number {
  const special = sharerSpecial.get(text);
  if (special !== undefined) return special;
  if (candidates.length === 1) return candidates[0];
  if (candidates.length === 0) return sharerPad;
  if (strategy === 'first') return candidates[0];
  let best = 0;
  for (let k = 1; k < candidates.length; k++) if (codePoints(candidateTexts[k]) > codePoints(candidateTexts[best])) best = k;
  return candidates[best];
}

interface PairSpecials {
  receiverPad: number;
  sharerPad: number;
  /** Sharer special-token strings that encode to exactly one id. */
  sharerSpecial: Map<string, number>;
}

/**
 * Round trips to the tokenizers (which may live in workers) are batched: the special tokens once per aligner,
 * then a fixed number of calls per request (render, section encodes, and for all message tokens together:
 * decode each, re-encode, decode multi-token candidates), whatever the number of messages or specials.
 */
export class ChatTokenAligner implements TokenAligner {
  private specials: Promise<PairSpecials> | null = null;

  constructor(
    private readonly receiver: TokenizerAccess,
    private readonly sharer: TokenizerAccess,
    private readonly strategy: AlignStrategy,
  ) {
    if (strategy !== 'first' && strategy !== 'longest') throw new InvalidInputError(`alignment strategy must be 'first' or 'longest', got "${strategy}"`, { field: 'alignment.strategy' });
  }

  private pairSpecials(): Promise<PairSpecials> {
    this.specials ??= (async () => {
      const [rSp, sSp] = await Promise.all([this.receiver.specials(), this.sharer.specials()]);
      if (rSp.padId === null
        || sSp.padId === null) throw new InvalidInputError('cross-tokenizer alignment needs a pad token in both tokenizers',
        { field: 'pad_token' });
      const tokens = sSp.specialTokens ?? [];
      const encoded = tokens.length ? await this.sharer.encodeTexts(tokens) : [];
      const sharerSpecial = new Map<string, number>();
      tokens.forEach((t, i) => encoded[i].length === 1 && sharerSpecial.set(t, encoded[i][0]));
      return { receiverPad: rSp.padId, sharerPad: sSp.padId, sharerSpecial };
    })();
    // A failed lookup is not cached: the next request asks again.
    this.specials.catch(() => (this.specials = null));
    return this.specials;
  }

  async alignChat(messages: ChatMessage[]): Promise<AlignedChat> {
    const [rText, sText, sp] = await Promise.all([this.receiver.render(messages), this.sharer.render(messages), this.pairSpecials()]);
    const rSec = splitSections(rText, messages);
    const sSec = splitSections(sText, messages);
    if (rSec.length !== sSec.length) throw new InvalidInputError('receiver and sharer chat templates split into different section counts',
      { field: 'messages' });
    const [rEnc, sEnc] = await Promise.all([this.receiver.encodeTexts(rSec.map((s) => s.text)),
      this.sharer.encodeTexts(sSec.map((s) => s.text))]);
    const mapped = await this.mapMessageTokens(rSec.flatMap((sec, k) => (sec.kind === 'message' ? rEnc[k] : [])), sp);
    const out: AlignedChat = { receiverIds: [], sharerIds: [], receiverMask: [], sharerMask: [], positions: [], messageRanges: [] };
    let m = 0;
    for (let k = 0; k < rSec.length; k++) {
      const r = rEnc[k];
      const start = out.receiverIds.length;
      if (rSec[k].kind === 'message') {
        for (const id of r) {
          out.receiverIds.push(id);
          out.sharerIds.push(mapped[m++]);
          out.receiverMask.push(1);
          out.sharerMask.push(1);
        }
        if (r.length) out.messageRanges.push([start, start + r.length]);
      } else {
        const s = sEnc[k];
        const n = Math.max(r.length, s.length);
        for (let i = 0; i < n; i++) {
          out.receiverIds.push(i < r.length ? r[i] : sp.receiverPad);
          out.receiverMask.push(i < r.length ? 1 : 0);
          out.sharerIds.push(i < s.length ? s[i] : sp.sharerPad);
          out.sharerMask.push(i < s.length ? 1 : 0);
        }
      }
    }
    out.positions = out.receiverIds.map((_, i) => i);
    if (out.receiverMask.at(-1) !== 1) {
      throw new InvalidInputError('the last prompt token is padding: the two chat templates tokenize their final sections differently',
        { field: 'messages' });
    }
    return out;
  }

  /** One sharer id per receiver message token, in three batched tokenizer calls. */
  private async mapMessageTokens(ids: number[], sp: PairSpecials): Promise<number[]> {
    if (!ids.length) return [];
    const texts = await this.receiver.decodeEach(ids);
    const cands = await this.sharer.encodeTexts(texts);
    const multi = this.strategy === 'longest' ? cands.filter((c) => c.length > 1) : [];
    const flatTexts = multi.length ? await this.sharer.decodeEach(multi.flat()) : [];
    let at = 0;
    return ids.map((_, i) => {
      const c = cands[i];
      let candTexts: string[] = [];
      if (this.strategy === 'longest' && c.length > 1) {
        candTexts = flatTexts.slice(at, at + c.length);
        at += c.length;
      }
      return pickSharerToken(texts[i], c, candTexts, this.strategy, sp.sharerSpecial, sp.sharerPad);
    });
  }
}

function hostAccess(hosts: () => Promise<{ sharer: HostApi; receiver: HostApi }>, role: ModelRole): TokenizerAccess {
  const op = async <T>(o: TokenizerOp) => (await (await hosts())[role].tokenizerOps(role, o)) as T;
  return {
    render: (messages) => op<string>({ kind: 'render', messages }),
    encodeTexts: (texts) => op<number[][]>({ kind: 'encodePieces', pieces: texts }),
    decodeEach: (ids) => op<string[]>({ kind: 'decodeEach', ids }),
    specials: () => op<TokenizerSpecials & { specialTokens?: string[] }>({ kind: 'specials' }),
  };
}

/** An aligner whose tokenizers live in the engine's hosts (workers or in-process). */
export function createTokenAligner(hosts: () => Promise<{ sharer: HostApi; receiver: HostApi }>, strategy: AlignStrategy): TokenAligner {
  return new ChatTokenAligner(hostAccess(hosts, 'receiver'), hostAccess(hosts, 'sharer'), strategy);
}
