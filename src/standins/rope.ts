/**
 * RoPE inverse frequencies, stored in the decoder graph as a constant (the graph computes cos/sin from
 * position_ids at run time). Default rope: inv_freq[i] = θ^(-2i/d). Llama 3 scaling (rope_type "llama3"):
 * long wavelengths (> original_context / low_freq_factor) are divided by `factor`, short ones (<
 * original_context / high_freq_factor) kept, the band between interpolated smoothly; attention scaling 1.
 */
import type { Llama3RopeScaling } from './families';

export function ropeInvFreq(headDim: number, theta: number, scaling: Llama3RopeScaling | null): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    // HF computes the exponent and the power in float32; round the exponent the same way.
    const exponent = Math.fround(Math.fround(2 * i) / headDim);
    out[i] = 1 / Math.fround(theta ** exponent);
  }
  return scaling ? llama3Scale(out, scaling) : out;
}

function llama3Scale(invFreq: Float32Array, s: Llama3RopeScaling): Float32Array {
  const lowFreqWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highFreqWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  return invFreq.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return f;
    if (wavelen > lowFreqWavelen) return f / s.factor;
    const smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}
