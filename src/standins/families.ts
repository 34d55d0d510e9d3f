/**
 * Architecture facts of the three stand-in families and the three real models they stand in for. Dims come
 * from src/presets.ts (the project's one source of model dims); the rest (rope, eps, special ids, context)
 * from the models' public config.json / generation_config.json files, written here as facts.
 */
import { InvalidInputError } from '../errors';
import { findPreset, type ModelArch } from '../presets';

export type Family = 'qwen3' | 'qwen2' | 'llama';

/** What differs between the decoder blocks of the three families (HF modeling_{qwen3,qwen2,llama}.py). */
export interface FamilyTraits {
  modelType: Family;
  architecture: string;
  /** Qwen3: per-head RMSNorm of q and k (weight [head_dim]) before RoPE. */
  qkNorm: boolean;
  /** Qwen2: q/k/v projections have a bias (o_proj and the MLP never do). */
  qkvBias: boolean;
}

export const FAMILY_TRAITS: Readonly<Record<Family, FamilyTraits>> = {
  qwen3: { modelType: 'qwen3', architecture: 'Qwen3ForCausalLM', qkNorm: true, qkvBias: false },
  qwen2: { modelType: 'qwen2', architecture: 'Qwen2ForCausalLM', qkNorm: false, qkvBias: true },
  llama: { modelType: 'llama', architecture: 'LlamaForCausalLM', qkNorm: false, qkvBias: false },
};

/** HF `rope_scaling` of rope_type "llama3" (Llama 3.1/3.2). */
export interface Llama3RopeScaling {
  rope_type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

export type TokenizerKind = 'qwen3' | 'qwen2.5' | 'llama3';
export type StandinModelKey = 'qwen3-0.6b' | 'qwen2.5-0.5b-instruct' | 'llama3.2-1b-instruct';

export interface StandinModelSpec {
  key: StandinModelKey;
  /** The onnx-community repo this folder stands in for (also its folder path under the variant root). */
  hubId: string;
  /** The original model (config `_name_or_path`, fuser recipe names). */
  sourceId: string;
  family: Family;
  arch: ModelArch;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  rmsNormEps: number;
  bosTokenId: number;
  eosTokenId: number | number[];
  padTokenId: number | null;
  tokenizer: TokenizerKind;
  /** Other config.json fields of the real model, copied for faithfulness (never read by our code). */
  extraConfig: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
}

function presetArch(pair: string, role: 'receiver' | 'sharer'): ModelArch {
  const p = findPreset(pair);
  if (!p) throw new Error(`preset ${pair} is missing from src/presets.ts`);
  return p[role].arch;
}

/** Qwen/Qwen3-0.6B config.json and generation_config.json. */
const QWEN3_0_6B: StandinModelSpec = {
  key: 'qwen3-0.6b',
  hubId: 'onnx-community/Qwen3-0.6B-ONNX',
  sourceId: 'Qwen/Qwen3-0.6B',
  family: 'qwen3',
  arch: presetArch('qwen3-0.6b+qwen2.5-0.5b', 'receiver'),
  ropeTheta: 1_000_000,
  ropeScaling: null,
  rmsNormEps: 1e-6,
  bosTokenId: 151643,
  eosTokenId: 151645,
  padTokenId: null,
  tokenizer: 'qwen3',
  extraConfig: { attention_bias: false, attention_dropout: 0.0, hidden_act: 'silu', initializer_range: 0.02, max_window_layers: 28,
    sliding_window: null, use_sliding_window: false, use_cache: true, torch_dtype: 'bfloat16' },
  generationConfig: { bos_token_id: 151643, do_sample: true, eos_token_id: [151645, 151643], pad_token_id: 151643, temperature: 0.6,
    top_k: 20, top_p: 0.95 },
};

/** Qwen/Qwen2.5-0.5B-Instruct config.json and generation_config.json. */
const QWEN25_0_5B: StandinModelSpec = {
  key: 'qwen2.5-0.5b-instruct',
  hubId: 'onnx-community/Qwen2.5-0.5B-Instruct',
  sourceId: 'Qwen/Qwen2.5-0.5B-Instruct',
  family: 'qwen2',
  arch: presetArch('qwen3-0.6b+qwen2.5-0.5b', 'sharer'),
  ropeTheta: 1_000_000,
  ropeScaling: null,
  rmsNormEps: 1e-6,
  bosTokenId: 151643,
  eosTokenId: 151645,
  padTokenId: null,
  tokenizer: 'qwen2.5',
  extraConfig: { attention_dropout: 0.0, hidden_act: 'silu', initializer_range: 0.02, max_window_layers: 21, sliding_window: 32768,
    use_sliding_window: false, use_cache: true, torch_dtype: 'bfloat16' },
  generationConfig: { bos_token_id: 151643, pad_token_id: 151643, do_sample: true, eos_token_id: [151645, 151643],
    repetition_penalty: 1.1, temperature: 0.7, top_p: 0.8, top_k: 20 },
};

/** meta-llama/Llama-3.2-1B-Instruct config.json and generation_config.json (no pad token). */
const LLAMA32_1B: StandinModelSpec = {
  key: 'llama3.2-1b-instruct',
  hubId: 'onnx-community/Llama-3.2-1B-Instruct',
  sourceId: 'meta-llama/Llama-3.2-1B-Instruct',
  family: 'llama',
  arch: presetArch('qwen3-0.6b+llama3.2-1b', 'sharer'),
  ropeTheta: 500_000,
  ropeScaling: { rope_type: 'llama3', factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 },
  rmsNormEps: 1e-5,
  bosTokenId: 128000,
  eosTokenId: [128001, 128008, 128009],
  padTokenId: null,
  tokenizer: 'llama3',
  extraConfig: { attention_bias: false, attention_dropout: 0.0, hidden_act: 'silu', initializer_range: 0.02, mlp_bias: false,
    pretraining_tp: 1, use_cache: true, torch_dtype: 'bfloat16' },
  generationConfig: { bos_token_id: 128000, do_sample: true, eos_token_id: [128001, 128008, 128009], temperature: 0.6, top_p: 0.9 },
};

export const STANDIN_MODELS: Readonly<Record<StandinModelKey, StandinModelSpec>> = {
  'qwen3-0.6b': QWEN3_0_6B,
  'qwen2.5-0.5b-instruct': QWEN25_0_5B,
  'llama3.2-1b-instruct': LLAMA32_1B,
};

export interface ReduceOptions {
  /** Decoder depth (default: the real one). */
  layers?: number;
  /**
   * Narrower body: the hidden size, and the MLP's intermediate size in proportion. Query heads, KV heads,
   * head_dim and vocab stay real: the KV cache the fuser sees keeps the real widths and attention keeps the
   * real GQA grouping (query heads per KV head), at a negligible cost (q/o projections are hidden × heads·d).
   */
  hidden?: number;
}

const positiveInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) > 0;

/** The real arch at a reduced depth and/or width (see ReduceOptions). */
export function reduceArch(a: ModelArch, o: ReduceOptions): ModelArch {
  for (const k of ['layers', 'hidden'] as const) {
    if (o[k] !== undefined
      && !positiveInt(o[k])) throw new InvalidInputError(`${k} must be a positive integer, got ${JSON.stringify(o[k])}`,
      { field: k, actual: o[k] });
  }
  const out: ModelArch = { ...a, numLayers: o.layers ?? a.numLayers };
  if (o.hidden !== undefined && o.hidden !== a.hiddenSize) {
    const ratio = o.hidden / a.hiddenSize;
    out.hiddenSize = o.hidden;
    out.intermediateSize = Math.max(8, Math.round((a.intermediateSize * ratio) / 8) * 8);
  }
  return out;
}

/** Upstream's terminal ("last_aligned") layer map: receiver layer t reads sharer layer clamp(t + S - T, 0, S - 1). */
export function terminalLayerMap(receiverLayers: number, sharerLayers: number): number[] {
  return Array.from({ length: receiverLayers }, (_, t) => Math.min(sharerLayers - 1, Math.max(0, t + sharerLayers - receiverLayers)));
}
