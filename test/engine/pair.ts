/**
 * Finds the pair the runtime tests run on: the shipped `models/c2c-tiny` (receiver, sharer, fuser, golden
 * fixtures from PyTorch, written by train/golden.py) or, via C2C_TEST_PAIR, another folder with the same layout.
 * Returns null when no complete pair is present, so suites can skip with a reason instead of failing.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineOptions } from '../../src/types';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface GoldenCase {
  case: number;
  user: string;
  prompt_ids: number[];
  receiver: { output_ids: number[] };
  sharer: { output_ids: number[] };
  c2c: { output_ids: number[] };
  text_relay: { output_ids: number[]; hint_prompt_ids: number[]; hint_ids: number[]; hint_text: string; relay_prompt_ids: number[] };
}

export interface Golden {
  layer_map: number[];
  max_new_tokens: number;
  hint_max_tokens: number;
  eos_token_ids: number[];
  cases: GoldenCase[];
}

export interface TestPair {
  /** Folder holding receiver/, sharer/, fuser/, golden/. */
  dir: string;
  /** Same folder relative to the repo (URL path under the served root). */
  rel: string;
  golden: Golden;
}

export function findPair(): TestPair | null {
  const rel = process.env.C2C_TEST_PAIR ?? 'models/c2c-tiny';
  const dir = path.resolve(REPO, rel);
  const need = ['receiver/onnx/model.onnx', 'sharer/onnx/model.onnx', 'fuser/fuser.json', 'golden/golden.json'];
  if (!need.every((f) => existsSync(path.join(dir, f)))) return null;
  return { dir, rel: path.relative(REPO, dir), golden: JSON.parse(readFileSync(path.join(dir, 'golden/golden.json'), 'utf8')) as Golden };
}

/** Engine options for a pair folder with the layout above (receiver/, sharer/, fuser/). */
export function pairOptions(dir: string): Pick<EngineOptions, 'receiver' | 'sharer' | 'fuser'> & { fuser: string } {
  return { sharer: { id: 'sharer', localPath: dir }, receiver: { id: 'receiver', localPath: dir }, fuser: path.join(dir, 'fuser') };
}

/** KV dims of one model of the pair, from its config.json. */
export function pairDims(pair: TestPair, role: 'receiver' | 'sharer'): { numLayers: number; kvHeads: number; headDim: number } {
  const cfg = JSON.parse(readFileSync(path.join(pair.dir, role, 'config.json'), 'utf8'));
  return { numLayers: cfg.num_hidden_layers, kvHeads: cfg.num_key_value_heads, headDim: cfg.head_dim };
}

export const PAIR = findPair();
export const NO_PAIR_REASON = 'no complete pair (receiver, sharer, fuser, golden) under models/c2c-tiny or C2C_TEST_PAIR';

/** Stand-in so suite bodies can be collected (and skipped) when no pair is present. Never run against. */
export const PAIR_OR_STUB: TestPair = PAIR ?? {
  dir: '',
  rel: '',
  golden: {
    layer_map: [],
    max_new_tokens: 1,
    hint_max_tokens: 1,
    eos_token_ids: [],
    cases: [
      {
        case: 0, user: '', prompt_ids: [], receiver: { output_ids: [] }, sharer: { output_ids: [] }, c2c: { output_ids: [] },
        text_relay: { output_ids: [], hint_prompt_ids: [], hint_ids: [], hint_text: '', relay_prompt_ids: [] },
      },
    ],
  },
};
