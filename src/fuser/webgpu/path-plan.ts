/**
 * The dispatch sequence of one projector path over one chunk of tokens (C2C §1.3):
 *   h0 = W_in·concat(s, r) + b           (GEMM reading both KV buffers)
 *   h1 = FFN_mlp1(h0)                    (per block: row RMS, GEMM[norm→W1→GELU], GEMM[W2 + residual]; inner width
 *                                         intermediate_dim, hidden_dim in scalar_mlp2)
 *   h3 = FFN_scalar(h1); w = σ((W_s·h3 + b_s)/T)
 *   h2 = FFN_proj(h1);   out = r + gate·w[h]·(W_out·h2 + b_out)   (combine in the last GEMM's epilogue)
 * RMSNorm, GELU, residual, sigmoid and the combine never touch memory on their own.
 */
import type { FuserConfig } from '../../types';
import { ffnModules } from '../shapes';
import { gemmDispatch, type GemmParams } from './gemm';
import type { DispatchRecord } from './program';
import { rowRmsDispatch } from './row-rms';
import type { PackedFFN, PackedPath } from './weights';
import type { KernelDType } from './wgsl';

/** Per-chunk intermediates, reused by every path and chunk of one submission. */
export interface Scratch {
  /** Three `[rows, hidden]` buffers: the trunk h1 stays intact while a branch ping-pongs in the other two. */
  hidden: [GPUBuffer, GPUBuffer, GPUBuffer];
  /** `[rows, intermediate]`. */
  inner: GPUBuffer;
  /** `[rows, receiver heads]` f32 head weights. */
  headWeight: GPUBuffer;
  /** `[rows]` f32 inverse RMS. */
  invRms: GPUBuffer;
  rows: number;
}

export interface PathJob {
  path: PackedPath;
  weights: GPUBuffer;
  sharer: GPUBuffer;
  receiver: GPUBuffer;
  out: GPUBuffer;
}

export interface ChunkSpan {
  seq: number;
  tok0: number;
  count: number;
}

const vec4If = (ok: boolean): 1 | 4 => (ok ? 4 : 1);

/**
 * How the weight matrices are stored and unpacked (int8 only; float weights when omitted) and how the KV
 * buffers are stored (f32 when omitted). Only the variants touching KV use the KV stores.
 */
export type GemmFormat = Pick<GemmParams, 'weights' | 'unpack' | 'sharerKV' | 'receiverKV'>;

/** Every GEMM variant the path plan uses for `cfg` (for warming the pipeline cache). */
export function pathGemmVariants(cfg: FuserConfig, dtype: KernelDType, wf: GemmFormat = {}): GemmParams[] {
  const H = cfg.hiddenDim;
  // Every FFN inner width in use (intermediate_dim, and hidden_dim for scalar_mlp2) must allow vec4 loads.
  const innerVec4 = ffnModules(cfg).every((m) => m.blocks === 0 || m.inner % 4 === 0);
  const base = { dtype, norm: false, bias: true, ...wf } as const;
  return [
    { ...base, input: 'kv-concat', components: vec4If(cfg.sharer.headDim % 4 === 0 && cfg.receiver.headDim % 4 === 0), epilogue: 'none' },
    { ...base, input: 'matrix', components: vec4If(H % 4 === 0), norm: true, bias: false, epilogue: 'gelu' },
    { ...base, input: 'matrix', components: vec4If(innerVec4), bias: false, epilogue: 'residual' },
    { ...base, input: 'matrix', components: vec4If(H % 4 === 0), epilogue: 'sigmoid' },
    { ...base, input: 'matrix', components: vec4If(H % 4 === 0), epilogue: 'combine' },
  ];
}

export function pathRecords(cfg: FuserConfig, dtype: KernelDType, job: PathJob, s: Scratch, span: ChunkSpan, maxGroups: number,
  wf: GemmFormat = {}): DispatchRecord[] {
  const [inG, w1G, w2G, headG, outG] = pathGemmVariants(cfg, dtype, wf);
  const H = cfg.hiddenDim;
  const M = span.count;
  const kv = {
    seq: span.seq,
    tok0: span.tok0,
    sharerHeads: cfg.sharer.kvHeads,
    sharerDim: cfg.sharer.headDim,
    receiverHeads: cfg.receiver.kvHeads,
    receiverDim: cfg.receiver.headDim,
  };
  const p = job.path;
  const records: DispatchRecord[] = [];
  const h = s.hidden;

  records.push(
    gemmDispatch(inG, { M, N: H, K: p.in.inDim, wOff: p.in.w, bOff: p.in.b, sOff: p.in.s, ...kv },
      { weights: job.weights, sharer: job.sharer, receiver: job.receiver, out: h[0] }, maxGroups),
  );

  const ffn = (b: PackedFFN, src: number, dst: number) => {
    records.push(rowRmsDispatch({ dtype }, M, H, cfg.rmsNormEps, h[src], s.invRms, maxGroups));
    // The block's own inner width: intermediate_dim, or hidden_dim in scalar_mlp2.
    const inner = b.w1.outDim;
    records.push(gemmDispatch(w1G, { M, N: inner, K: H, wOff: b.w1.w, gOff: b.norm, sOff: b.w1.s },
      { weights: job.weights, a: h[src], invRms: s.invRms, out: s.inner }, maxGroups));
    records.push(gemmDispatch(w2G, { M, N: H, K: inner, wOff: b.w2.w, sOff: b.w2.s },
      { weights: job.weights, a: s.inner, residual: h[src], out: h[dst] }, maxGroups));
  };
  /** Runs `blocks` from buffer `from`, never writing `keep`; returns the buffer holding the result. */
  const chain = (blocks: PackedFFN[], from: number, keep: number): number => {
    let cur = from;
    for (const b of blocks) {
      const next = [0, 1, 2].find((i) => i !== cur && i !== keep)!;
      ffn(b, cur, next);
      cur = next;
    }
    return cur;
  };

  const trunk = chain(p.mlp1, 0, -1);
  const scalar = chain(p.scalarMlp2, trunk, trunk);
  records.push(
    gemmDispatch(headG, { M, N: cfg.receiver.kvHeads, K: H, wOff: p.scalarHead.w, bOff: p.scalarHead.b, sOff: p.scalarHead.s,
      temperature: cfg.scalarTemperature }, { weights: job.weights, a: h[scalar], out: s.headWeight }, maxGroups),
  );
  const proj = chain(p.projMlp2, trunk, trunk);
  records.push(
    gemmDispatch(
      outG,
      { M, N: p.projOut.outDim, K: H, wOff: p.projOut.w, bOff: p.projOut.b, sOff: p.projOut.s, gate: 1, ...kv },
      { weights: job.weights, a: h[proj], headWeight: s.headWeight, receiver: job.receiver, out: job.out },
      maxGroups,
    ),
  );
  return records;
}
