/**
 * In-memory form of a C2C fuser (one C2CProjector per receiver layer, K and V paths) and the Fuser
 * interface that the CPU reference and the WebGPU kernels both implement. Weights are Float32Array after
 * loading (bf16/f16 sources are widened on load); Linear weights are `[out, in]` row-major like PyTorch.
 */
import type { KVCache } from './kv';

/** Storage dtype of a fuser file; 'int8' = per-output-channel int8 Linear weights + f32 scales (src/fuser/quantize.ts). */
export type FuserDType = 'float32' | 'float16' | 'bfloat16' | 'int8';

export interface ModelKVDims {
  numLayers: number;
  kvHeads: number;
  headDim: number;
}

export interface FuserConfig {
  receiver: ModelKVDims;
  sharer: ModelKVDims;
  hiddenDim: number;
  intermediateDim: number;
  /** Official `num_layers`: mlp1 and scalar_mlp2 have one FFN block each, proj_mlp2 has numMlpLayers-2. */
  numMlpLayers: number;
  rmsNormEps: number;
  scalarTemperature: number;
  dtype: FuserDType;
  /** sharer layer G(t) for each receiver layer t (already resolved from 'terminal' or explicit). */
  layerMap: number[];
  alignment?: { enabled: boolean; strategy: 'first' | 'longest' };
}

export interface LinearParams {
  /** `[outDim, inDim]` row-major. For an int8 Linear: the dequantised `quant.weight[o, i] * quant.scale[o]`. */
  weight: Float32Array;
  bias?: Float32Array;
  outDim: number;
  inDim: number;
  /** int8 form (symmetric per-output-channel): q `[outDim, inDim]` in [-127, 127] and scale `[outDim]`. */
  quant?: { weight: Int8Array; scale: Float32Array };
}

/** y = x + W2 · GELU(W1 · RMSNorm(x)), bias-free W1 `[intermediate, hidden]`, W2 `[hidden, intermediate]`. */
export interface FFNBlockParams {
  norm: Float32Array;
  w1: LinearParams;
  w2: LinearParams;
}

/** One path (K or V) of one projector. */
export interface ProjectorPathParams {
  in: LinearParams;
  mlp1: FFNBlockParams[];
  scalarMlp2: FFNBlockParams[];
  scalarHead: LinearParams;
  projMlp2: FFNBlockParams[];
  projOut: LinearParams;
  gateLogit: number;
}

export interface LayerProjector {
  key: ProjectorPathParams;
  value: ProjectorPathParams;
}

export interface FuserWeights {
  config: FuserConfig;
  /** One per receiver layer. */
  layers: LayerProjector[];
}

/** The two fuser folder layouts the loaders read: ours (fuser.json + safetensors) and upstream's released one. */
export type FuserFormat = 'c2c-web' | 'official';

/** One file a fuser load read: its size, whether the local cache served it, and what its bytes were checked against. */
export interface FuserFileReport {
  file: string;
  bytes: number;
  cached: boolean;
  /** The strongest check passed: a manifest sha256, a manifest size, the server's Content-Length, or none. */
  verified: 'sha256' | 'size' | 'content-length' | 'none';
  /** A cached copy failed its check and was fetched again. */
  refetched?: boolean;
}

/** A loaded fuser and how it was loaded. */
export interface LoadedFuser {
  weights: FuserWeights;
  format: FuserFormat;
  files: FuserFileReport[];
  /** Where `config.sharer.numLayers` came from (the official layout does not store it). */
  sharerLayersFrom: 'fuser.json' | 'option' | 'sharer-model' | 'layer-map';
}

export interface FuseOptions {
  /** Fuse only tokens [start, end) (default: all). Tokens outside keep the receiver's values. */
  start?: number;
  end?: number;
  signal?: AbortSignal;
}

/** Same signature for the CPU reference and WebGPU implementations. Never mutates its inputs. */
export interface Fuser {
  readonly config: FuserConfig;
  readonly backend: 'cpu' | 'webgpu';
  fuse(receiver: KVCache, sharer: KVCache, opts?: FuseOptions): Promise<KVCache>;
  dispose(): void;
}

