/**
 * Cross-tokenizer pair (sharer_b with its own tokenizer, fuser_b with alignment enabled) against the PyTorch
 * golden fixtures of train/train_hetero.py: aligned ids and masks equal train/align.py's, and C2C through the
 * aligner gives the golden tokens. Also the aligner's padding and strategy rules on a fake tokenizer pair.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createNodeC2CEngine, nodePlatform } from '../../src/node';
import { ModelHost } from '../../src/hosts/model-host';
import { ChatTokenAligner, createTokenAligner, pickSharerToken, splitSections, type TokenizerAccess } from '../../src/align/token-aligner';
import type { C2CEngine } from '../../src/types';
import { PAIR, PAIR_OR_STUB } from './pair';

interface HeteroCase {
  user: string;
  aligned: { receiver_ids: number[]; sharer_ids: number[]; message_mask: number[]; receiver_mask: number[]; sharer_mask: number[] };
  c2c_output_ids: number[];
}
const heteroFile = PAIR ? path.join(PAIR.dir, 'golden/hetero.json') : '';
const HETERO = PAIR && existsSync(heteroFile) && existsSync(path.join(PAIR.dir, 'fuser_b/fuser.json'))
  && existsSync(path.join(PAIR.dir, 'sharer_b/onnx/model.onnx'))
  ? (JSON.parse(readFileSync(heteroFile, 'utf8')) as { strategy: 'first' | 'longest'; cases: HeteroCase[] })
  : null;

describe.skipIf(!HETERO)(`cross-tokenizer pair vs PyTorch${HETERO ? '' : ' (skipped: no sharer_b/fuser_b/golden/hetero.json)'}`, () => {
  const dir = PAIR_OR_STUB.dir;
  const maxNew = PAIR_OR_STUB.golden.max_new_tokens;
  let engine: C2CEngine;
  let host: ModelHost;

  beforeAll(async () => {
    engine = await createNodeC2CEngine({ receiver: { id: 'receiver', localPath: dir }, sharer: { id: 'sharer_b', localPath: dir },
      fuser: path.join(dir, 'fuser_b') });
    host = new ModelHost(nodePlatform());
    await host.init({ device: 'cpu', allowRemoteModels: false, shareDevice: false, topology: 'node' });
    await host.loadModel('receiver', { id: 'receiver', localPath: dir });
    await host.loadModel('sharer', { id: 'sharer_b', localPath: dir });
  });
  afterAll(async () => {
    await engine?.dispose();
    await host?.dispose();
  });

  it('aligned ids and masks equal train/align.py', async () => {
    const aligner = createTokenAligner(async () => ({ sharer: host, receiver: host }), HETERO!.strategy);
    for (const c of HETERO!.cases) {
      const a = await aligner.alignChat([{ role: 'user', content: c.user }]);
      expect(a.receiverIds).toEqual(c.aligned.receiver_ids);
      expect(a.sharerIds).toEqual(c.aligned.sharer_ids);
      expect(a.receiverMask).toEqual(c.aligned.receiver_mask);
      expect(a.sharerMask).toEqual(c.aligned.sharer_mask);
      const msg = new Array(a.receiverIds.length).fill(0);
      for (const [s, e] of a.messageRanges) for (let i = s; i < e; i++) msg[i] = 1;
      expect(msg).toEqual(c.aligned.message_mask);
    }
  });

  it('c2c through the aligner gives the golden tokens', async () => {
    for (const c of HETERO!.cases) {
      const r = await engine.generate([{ role: 'user', content: c.user }], { mode: 'c2c', maxNewTokens: maxNew });
      expect(r.promptIds).toEqual(c.aligned.receiver_ids);
      expect(r.tokenIds).toEqual(c.c2c_output_ids);
    }
  });
});

describe('aligner rules (fake tokenizers)', () => {
  // Receiver: one token per character. Sharer: one token per word-ish chunk, template text in 1 token.
  const chars = (s: string) => [...s].map((ch) => ch.charCodeAt(0));
  const receiver: TokenizerAccess = {
    render: async (m) => `<s>${m.map((x) => x.content).join('<m>')}<e>`,
    encodeTexts: async (t) => t.map(chars),
    decodeEach: async (ids) => ids.map((i) => String.fromCharCode(i)),
    specials: async () => ({ padId: 0, unkId: null, eosIds: [1], padToken: '<pad>', specialTokens: [] }),
  };
  const sharerVocab = new Map<string, number>([['<s>', 500], ['<e>', 501], ['a', 10], ['b', 11], ['ab', 12]]);
  const sharer: TokenizerAccess = {
    render: receiver.render,
    encodeTexts: async (t) => t.map((s) => (sharerVocab.has(s) ? [sharerVocab.get(s)!] : s === 'c' ? [] : s === 'd' ? [10, 12]
      : [...s].map((ch) => sharerVocab.get(ch) ?? 99))),
    decodeEach: async (ids) => ids.map((i) => [...sharerVocab].find(([, v]) => v === i)?.[0] ?? '?'),
    specials: async () => ({ padId: 7, unkId: null, eosIds: [8], padToken: '<pad>', specialTokens: [] }),
  };

  it('pads the shorter template side, maps message tokens one-to-one, fuses message tokens only', async () => {
    const a = await new ChatTokenAligner(receiver, sharer, 'longest').alignChat([{ role: 'user', content: 'abcd' }]);
    // sections: template "<s>" (3 receiver tokens vs 1 sharer token), message "abcd", template "<e>";
    // 'c' has no sharer token (→ pad id), 'd' has two candidates ('a', 'ab': longest wins)
    expect(a.receiverIds).toEqual([...chars('<s>abcd<e>')]);
    expect(a.sharerIds).toEqual([500, 7, 7, 10, 11, 7, 12, 501, 7, 7]);
    expect(a.sharerMask).toEqual([1, 0, 0, 1, 1, 1, 1, 1, 0, 0]);
    expect(a.receiverMask.every((x) => x === 1)).toBe(true);
    expect(a.messageRanges).toEqual([[3, 7]]);
    expect(a.positions).toEqual(a.receiverIds.map((_, i) => i));
    const first = await new ChatTokenAligner(receiver, sharer, 'first').alignChat([{ role: 'user', content: 'd' }]);
    expect(first.sharerIds[3]).toBe(10); // 'first' keeps the first candidate; 'longest' would pick 12 ("ab")
  });

  it('makes a fixed number of tokenizer round trips per request, whatever the number of specials and messages', async () => {
    const calls: string[] = [];
    const counted = (t: TokenizerAccess, who: string, specialTokens: string[]): TokenizerAccess => ({
      render: (m) => (calls.push(`${who}.render`), t.render(m)),
      encodeTexts: (x) => (calls.push(`${who}.encode`), t.encodeTexts(x)),
      decodeEach: (x) => (calls.push(`${who}.decode`), t.decodeEach(x)),
      specials: async () => (calls.push(`${who}.specials`), { ...(await t.specials()), specialTokens }),
    });
    const manySpecials = Array.from({ length: 256 }, (_, i) => `<|reserved_${i}|>`); // Llama 3 has 256 of them
    const aligner = new ChatTokenAligner(counted(receiver, 'r', []), counted(sharer, 's', manySpecials), 'longest');
    const oneTurn = [{ role: 'user' as const, content: 'abcd' }];
    const threeTurns = [...oneTurn, { role: 'assistant' as const, content: 'dd' }, { role: 'user' as const, content: 'bad' }];
    await aligner.alignChat(oneTurn);
    const first = calls.length;
    calls.length = 0;
    await aligner.alignChat(threeTurns);
    const later = calls.length;
    expect(calls.some((c) => c.endsWith('.specials'))).toBe(false); // specials are looked up once per aligner
    expect(first).toBeLessThanOrEqual(10); // 2 specials + 1 batched special encode + 7 per request
    expect(later).toBeLessThanOrEqual(7);
  });

  it('splitSections requires a content span to end the text or precede "<"', () => {
    expect(splitSections('<u>hi<m>there<e>', [{ role: 'user', content: 'hi' }, { role: 'user', content: 'there' }]).map(
      (s) => s.kind)).toEqual(
      ['template', 'message', 'template', 'message', 'template'],
    );
    expect(() => splitSections('<u>hi there<e>', [{ role: 'user', content: 'hi' }])).toThrow(/messages\[0\]/);
    expect(pickSharerToken('<x>', [5, 6], [], 'first', new Map([['<x>', 42]]), 0)).toBe(42);
  });
});
