/**
 * TokenAligner (placeholder interface; the implementation follows): maps a chat to receiver and sharer ids of
 * equal length for pairs whose tokenizers differ.
 */
import type { ChatMessage } from '../engine/types';

export interface AlignedChat {
  receiverIds: number[];
  sharerIds: number[];
  /** Shared position ids (arange over the padded length). */
  positions: number[];
  /** [start, end) ranges of message sections: the only tokens fused cross-tokenizer. */
  messageRanges: [number, number][];
}

export interface TokenAligner {
  alignChat(messages: ChatMessage[]): Promise<AlignedChat>;
}

import { InvalidInputError } from '../errors';
import type { HostApi } from '../engine/protocol';

/** Cross-tokenizer alignment (c2c-reference §3). Not implemented yet: refuses the pair with a typed error. */
export function createTokenAligner(_hosts: () => Promise<{ sharer: HostApi; receiver: HostApi }>, strategy: 'first' | 'longest'): TokenAligner {
  throw new InvalidInputError(`this fuser needs cross-tokenizer alignment (strategy "${strategy}"), which this runtime does not support yet`, {
    field: 'alignment',
  });
}
