/**
 * config.json and generation_config.json of a stand-in model folder: the real model's fields (families.ts)
 * with the stand-in's dims, plus `transformers.js_config` as onnx-community writes it. transformers.js 4.3.1
 * reads `use_external_data_format` (per file: how many `<file>_data[_n]` chunks to fetch; without it a
 * browser session cannot mount the external data) and builds the empty KV cache from the ONNX session's
 * input types; `kv_cache_dtype` is written because onnx-community's configs carry it (4.3.1 does not read it).
 */
import type { ModelArch } from '../presets';
import { FAMILY_TRAITS, type StandinModelSpec } from './families';

/** Per ONNX file name: number of external data chunks (only files that have any). */
export type ExternalDataCounts = Record<string, number>;

/** Real configs that carry head_dim (Qwen2.5's derives it from hidden_size / heads). */
const HAS_HEAD_DIM = new Set(['qwen3', 'llama']);

export function hfConfig(spec: StandinModelSpec, a: ModelArch, externalData: ExternalDataCounts,
  hasFp16: boolean): Record<string, unknown> {
  const t = FAMILY_TRAITS[spec.family];
  const cfg: Record<string, unknown> = {
    _name_or_path: spec.sourceId,
    architectures: [t.architecture],
    model_type: t.modelType,
    hidden_size: a.hiddenSize,
    intermediate_size: a.intermediateSize,
    num_hidden_layers: a.numLayers,
    num_attention_heads: a.numHeads,
    num_key_value_heads: a.kvHeads,
    vocab_size: a.vocabSize,
    max_position_embeddings: a.maxContext,
    rms_norm_eps: spec.rmsNormEps,
    rope_theta: spec.ropeTheta,
    rope_scaling: spec.ropeScaling,
    tie_word_embeddings: a.tiedEmbeddings,
    bos_token_id: spec.bosTokenId,
    eos_token_id: spec.eosTokenId,
  };
  // A narrowed body no longer has hidden_size / heads = head_dim: say it explicitly then.
  if (HAS_HEAD_DIM.has(spec.family) || a.hiddenSize / a.numHeads !== a.headDim) cfg.head_dim = a.headDim;
  if (spec.padTokenId !== null) cfg.pad_token_id = spec.padTokenId;
  Object.assign(cfg, spec.extraConfig);
  const jsConfig: Record<string, unknown> = {};
  if (hasFp16) jsConfig.kv_cache_dtype = { fp16: 'float16' };
  if (Object.keys(externalData).length) jsConfig.use_external_data_format = { ...externalData };
  if (Object.keys(jsConfig).length) cfg['transformers.js_config'] = jsConfig;
  return cfg;
}

export function generationConfig(spec: StandinModelSpec): Record<string, unknown> {
  return { ...spec.generationConfig };
}
