/**
 * onnxruntime-node session options for every model. On x86-64 without VNNI, ORT's u8·s8 int8 GEMM
 * (vpmaddubsw) saturates pairs of products at int16, which corrupts q8 models (full-range int8 weights, as
 * onnx-community exports them) by far more than quantization does: measured 0.26 relative on the stand-ins'
 * logits. `session.x64quantprecision` makes ORT run such MatMuls as u8·u8 there (exact, slower); other CPUs and
 * float models are unaffected.
 */
export const NODE_SESSION_OPTIONS: Readonly<Record<string, unknown>> = Object.freeze({
  extra: { session: { x64quantprecision: '1' } },
});
