/**
 * Fusion orchestration inside a host: the receiver's kept KV is replaced by its fused version, range by range
 * (cross-tokenizer pairs fuse only message sections). On the single-worker WebGPU path both caches stay GPU
 * tensors and the WebGPU fuser reads and writes GPU buffers; otherwise both are CPU caches (GPU tensors are
 * downloaded first). The sharer's entry is done afterwards (decoding is receiver-only) and its GPU tensors freed.
 */
import { ShapeMismatchError } from '../errors';
import type { Fuser, KVCache, ModelInfo } from '../types';
import { disposeTensors } from '../models/causal-lm';
import { presentToKVCache } from '../kv/convert';
import { gpuKVToPresent, isGpuFuser, presentDType, presentToGpuKV } from './gpu-kv';
import type { KeptKV } from './kv-registry';

/** The CPU KV of a kept entry, downloading (and then freeing) its GPU tensors if it holds those. */
export async function keptToCpu(k: Pick<KeptKV, 'kv' | 'present'>, info: Pick<ModelInfo, 'numLayers'>): Promise<KVCache> {
  if (!k.kv) {
    k.kv = await presentToKVCache(k.present as never, info.numLayers);
    disposeTensors(k.present);
    k.present = undefined;
  }
  return k.kv;
}

export interface FusionInput {
  fuser: Fuser;
  receiver: KeptKV;
  sharer: Pick<KeptKV, 'kv' | 'present' | 'seq'>;
  /** The sharer's model may live in another worker: only its layer count is needed (the fuser's config has it). */
  info: { receiver: ModelInfo; sharer: Pick<ModelInfo, 'numLayers'> };
  /** Token ranges [start, end) to fuse; default the whole cache. Empty ranges are skipped. */
  ranges?: [number, number][];
  signal?: AbortSignal;
}

/** Fuses `receiver` in place (its `kv` or `present` becomes the fused cache). */
export async function fuseKept({ fuser, receiver: r, sharer: s, info, ranges, signal }: FusionInput): Promise<void> {
  if (r.seq !== s.seq) throw new ShapeMismatchError(`receiver KV has ${r.seq} tokens, sharer KV ${s.seq}`,
    { expected: r.seq, actual: s.seq });
  const spans = (ranges ?? [[0, r.seq]]).filter(([a, b]) => b > a);
  try {
    if (r.present && s.present && isGpuFuser(fuser) && spans.length) {
      let cur = r.present;
      const sharerGpu = presentToGpuKV(s.present, info.sharer.numLayers);
      // The fused KV keeps the receiver's dtype (f16 buffers stay f16 on the GPU).
      const dtypes = { receiverDType: presentDType(r.present), sharerDType: presentDType(s.present) };
      for (const [start, end] of spans) {
        const bufs = await fuser.fuseBuffers(presentToGpuKV(cur, info.receiver.numLayers), sharerGpu, r.seq,
          { start, end, signal, ...dtypes });
        const next = gpuKVToPresent(bufs, cur['present.0.key'], info.receiver, r.seq, dtypes.receiverDType);
        if (cur !== r.present) disposeTensors(cur);
        cur = next;
      }
      disposeTensors(r.present);
      r.present = cur;
      return;
    }
    let fused = await keptToCpu(r, info.receiver);
    const sKV = await keptToCpu(s, info.sharer);
    for (const [start, end] of spans) fused = await fuser.fuse(fused, sKV, { start, end, signal });
    r.kv = fused;
  } finally {
    if (s.present) disposeTensors(s.present);
  }
}
