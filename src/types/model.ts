/** What every layer knows about a chat model: its messages, where it comes from, what it is. */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A model: a Hub id ('onnx-community/Qwen3-0.6B-ONNX') or a local folder/URL served with the app. */
export interface ModelSource {
  id: string;
  /** Local base URL/folder the id is resolved under when offline (transformers.js `localModelPath`). */
  localPath?: string;
  /**
   * transformers.js dtype of the model file ('fp32', 'fp16', 'q8', 'q4', 'q4f16', 'auto', …). Default: the model's own
   * config.json `transformers.js_config.dtype` when it has one (as transformers.js picks it), else 'fp32'.
   * The chosen dtype and the KV dtype it implies are reported in `DeviceReport.models`.
   */
  dtype?: string;
  /**
   * Extra variables for the chat template (Jinja kwargs of `apply_chat_template`). Default
   * `{ enable_thinking: false }`: Qwen3 without its think block, as in the paper's evaluation.
   */
  chatTemplateOptions?: Record<string, unknown>;
}

/** What the runtime reads from a loaded model's config and tokenizer. */
export interface ModelInfo {
  id: string;
  numLayers: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  /** Context length (max_position_embeddings). */
  maxPositions: number;
  /** Tokens that end a reply: the tokenizer's eos plus generation_config eos ids. */
  eosIds: number[];
  padId: number | null;
  unkId: number | null;
}
