export interface DecoderConfig {
  hidden_size: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim?: number;
  intermediate_size: number;
  num_hidden_layers: number;
  vocab_size: number;
}
export declare const PAPER_TABLE_3: {
  source: string;
  receiverPrefillMs: number;
  fusionMs: number;
  fusionOverReceiverPrefill: number;
  receiverMs: number;
  c2cMs: number;
  textToTextMs: number;
  c2cOverReceiver: number;
  textRelayOverC2C: number;
};
export declare function deviceSlug(): string;
export declare function prefillFlops(cfg: DecoderConfig, n: number, logitRows?: number): {
  formula: string;
  n: number;
  logitRows: number;
  bodyGflop: number;
  lmHeadGflop: number;
  gflop: number;
};
export declare function buildReport(input: Record<string, unknown>): Record<string, unknown>;
export declare function markdownTable(report: Record<string, unknown>, file: string): string;
