/**
 * Input validation for the CPU reference fuser (and reusable by the WebGPU fuser): KV tensor dims against
 * the fuser config, cache layer counts, equal token counts, token ranges and projector parameter shapes.
 * Dims that disagree with the fuser or each other → ShapeMismatchError; malformed arguments → InvalidInputError.
 */
import { InvalidInputError, ShapeMismatchError } from '../errors';
import type { KVCache, KVTensor } from '../kv/types';
import type { FFNBlockParams, FuserConfig, LinearParams, ModelKVDims, ProjectorPathParams } from './types';

/** Checks one KV tensor: integer dims, seq ≥ 1, data length, heads/headDim equal to the model dims. */
export function checkKVTensor(t: KVTensor, dims: ModelKVDims, what: string): void {
  for (const f of ['heads', 'seq', 'headDim'] as const) {
    if (!Number.isInteger(t[f]) || t[f] < 0) {
      throw new InvalidInputError(`${what}.${f} must be a non-negative integer, got ${t[f]}`, { field: `${what}.${f}`, actual: t[f] });
    }
  }
  if (t.seq === 0) throw new InvalidInputError(`${what}.seq is 0: nothing to fuse`, { field: `${what}.seq`, actual: 0 });
  if (!(t.data instanceof Float32Array)) {
    throw new InvalidInputError(`${what}.data must be a Float32Array`, { field: `${what}.data` });
  }
  const want = t.heads * t.seq * t.headDim;
  if (t.data.length !== want) {
    throw new InvalidInputError(`${what}.data has ${t.data.length} elements, heads*seq*headDim = ${t.heads}*${t.seq}*${t.headDim} = ${want}`, {
      field: `${what}.data`, expected: want, actual: t.data.length,
    });
  }
  if (t.heads !== dims.kvHeads) {
    throw new ShapeMismatchError(`${what}.heads is ${t.heads}, the fuser expects ${dims.kvHeads} KV heads`, {
      field: `${what}.heads`, expected: dims.kvHeads, actual: t.heads,
    });
  }
  if (t.headDim !== dims.headDim) {
    throw new ShapeMismatchError(`${what}.headDim is ${t.headDim}, the fuser expects ${dims.headDim}`, {
      field: `${what}.headDim`, expected: dims.headDim, actual: t.headDim,
    });
  }
}

/** Checks both caches against the fuser and returns the common token count. */
export function checkCacheShapes(cfg: FuserConfig, receiver: KVCache, sharer: KVCache): number {
  for (const [name, cache, dims] of [['receiver', receiver, cfg.receiver], ['sharer', sharer, cfg.sharer]] as const) {
    if (!Array.isArray(cache)) throw new InvalidInputError(`${name} cache must be an array of layers`, { field: name });
    if (cache.length !== dims.numLayers) {
      throw new ShapeMismatchError(`${name} cache has ${cache.length} layers, the fuser expects ${dims.numLayers}`, {
        field: `${name}.length`, expected: dims.numLayers, actual: cache.length,
      });
    }
  }
  let seq = -1;
  let first = '';
  for (const [name, cache, dims] of [['receiver', receiver, cfg.receiver], ['sharer', sharer, cfg.sharer]] as const) {
    cache.forEach((layer, l) => {
      for (const kv of ['key', 'value'] as const) {
        const what = `${name}[${l}].${kv}`;
        const t = layer?.[kv];
        if (!t) throw new InvalidInputError(`${what} is missing`, { field: what });
        checkKVTensor(t, dims, what);
        if (seq < 0) {
          seq = t.seq;
          first = what;
        } else if (t.seq !== seq) {
          throw new ShapeMismatchError(`${what}.seq is ${t.seq} but ${first}.seq is ${seq}: sharer and receiver must cover the same tokens`, {
            field: `${what}.seq`, expected: seq, actual: t.seq,
          });
        }
      }
    });
  }
  return seq;
}

/** Resolves an optional [start, end) token range; integers with 0 ≤ start ≤ end ≤ seq. */
export function resolveRange(seq: number, start?: number, end?: number): [number, number] {
  const s = start ?? 0;
  const e = end ?? seq;
  if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > seq || s > e) {
    throw new InvalidInputError(`token range [${start}, ${end}) is invalid for seq ${seq} (need integers 0 ≤ start ≤ end ≤ seq)`, {
      field: 'start/end', expected: `0 <= start <= end <= ${seq}`, actual: [start, end],
    });
  }
  return [s, e];
}

function checkLinear(p: LinearParams, outDim: number, inDim: number, hasBias: boolean, what: string): void {
  const ok = p.outDim === outDim && p.inDim === inDim && p.weight.length === outDim * inDim
    && (!hasBias || (p.bias !== undefined && p.bias.length === outDim));
  if (!ok) {
    throw new ShapeMismatchError(`${what}: expected weight [${outDim}, ${inDim}]${hasBias ? ` and bias [${outDim}]` : ''}, got [${p.outDim}, ${p.inDim}] (${p.weight.length} values)`, {
      field: what, expected: [outDim, inDim], actual: [p.outDim, p.inDim],
    });
  }
}

function checkBlocks(blocks: FFNBlockParams[], count: number, cfg: FuserConfig, what: string): void {
  if (blocks.length !== count) {
    throw new ShapeMismatchError(`${what} has ${blocks.length} FFN blocks, expected ${count}`, { field: what, expected: count, actual: blocks.length });
  }
  blocks.forEach((b, i) => {
    if (b.norm.length !== cfg.hiddenDim) {
      throw new ShapeMismatchError(`${what}.blocks.${i}.norm has ${b.norm.length} values, expected ${cfg.hiddenDim}`, { field: `${what}.blocks.${i}.norm` });
    }
    checkLinear(b.w1, cfg.intermediateDim, cfg.hiddenDim, false, `${what}.blocks.${i}.w1`);
    checkLinear(b.w2, cfg.hiddenDim, cfg.intermediateDim, false, `${what}.blocks.${i}.w2`);
  });
}

/** Checks one path's parameter shapes against the config (a hand-built FuserWeights can be wrong). */
export function checkPathParams(p: ProjectorPathParams, cfg: FuserConfig, what: string): void {
  const inDim = cfg.sharer.kvHeads * cfg.sharer.headDim;
  const outDim = cfg.receiver.kvHeads * cfg.receiver.headDim;
  checkLinear(p.in, cfg.hiddenDim, inDim + outDim, true, `${what}.in`);
  checkBlocks(p.mlp1, 1, cfg, `${what}.mlp1`);
  checkBlocks(p.scalarMlp2, 1, cfg, `${what}.scalarMlp2`);
  checkBlocks(p.projMlp2, cfg.numMlpLayers - 2, cfg, `${what}.projMlp2`);
  checkLinear(p.scalarHead, cfg.receiver.kvHeads, cfg.hiddenDim, true, `${what}.scalarHead`);
  checkLinear(p.projOut, outDim, cfg.hiddenDim, true, `${what}.projOut`);
  if (!Number.isFinite(p.gateLogit)) {
    throw new InvalidInputError(`${what}.gateLogit must be a finite number, got ${p.gateLogit}`, { field: `${what}.gateLogit` });
  }
}
