/**
 * Uploads a fuser's weights once: every open (layer, path) is laid out as one contiguous run of tensors
 * (Linear weight, bias, norm weight), each starting at a 4-element boundary so the GEMM can load vec4s;
 * runs are packed into as few GPU buffers as the binding limit allows (one buffer per run at worst). f32
 * sources are converted to f16 on upload when the kernels run in f16. Closed paths are never uploaded.
 * int8 (`weightDType: 'int8'`): the buffer is u32 words; each Linear weight is packed 4 int8 per word along
 * `in` (row-major `[out, in]`, rows padded to whole words with zeros), followed by its `[out]` f32 scales;
 * biases and norm weights are f32 words. Linears without `quant` are quantised here (symmetric per row).
 */
import { MemoryBudgetError } from '../../errors';
import { float32ToFloat16Bits } from '../../util/half';
import { quantizeInt8 } from '../quantize';
import type { FFNBlockParams, FuserWeights, LinearParams, ProjectorPathParams } from '../../types';
import { dtypeBytes, type WeightDType } from './wgsl';

/** Element (int8: word) offsets of one Linear inside its buffer; `b` is -1 without bias, `s` (int8 scales) -1 for float. */
export interface PackedLinear {
  w: number;
  b: number;
  s: number;
  outDim: number;
  inDim: number;
}

export interface PackedFFN {
  norm: number;
  w1: PackedLinear;
  w2: PackedLinear;
}

export interface PackedPath {
  /** Index into `PackedWeights.buffers`. */
  buffer: number;
  in: PackedLinear;
  mlp1: PackedFFN[];
  scalarMlp2: PackedFFN[];
  scalarHead: PackedLinear;
  projMlp2: PackedFFN[];
  projOut: PackedLinear;
  gateLogit: number;
}

export interface PackedWeights {
  buffers: GPUBuffer[];
  /** Per receiver layer; null for a closed path (gate logit ≤ 0), which is never computed. */
  layers: { key: PackedPath | null; value: PackedPath | null }[];
  bytes: number;
}

const ALIGN = 4;
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** The hard gate of C2C inference: `gate = 1 if logit > 0 else 0`. */
export const isGateOpen = (p: ProjectorPathParams): boolean => p.gateLogit > 0;

/** One write into the host copy: f32 values (converted to the buffer dtype) or raw u32 words (packed int8). */
type Write = [number, Float32Array | Uint32Array];

/** Packs a `[out, in]` int8 matrix 4 per little-endian u32 along `in`, each row padded to whole words with 0. */
export function packInt8Rows(q: Int8Array, outDim: number, inDim: number): Uint32Array {
  const words = Math.ceil(inDim / 4);
  const bytes = new Int8Array(outDim * words * 4);
  for (let o = 0; o < outDim; o++) bytes.set(q.subarray(o * inDim, (o + 1) * inDim), o * words * 4);
  // Typed arrays use the platform byte order; WebGPU buffers are little-endian, as is every JS host in practice.
  return new Uint32Array(bytes.buffer);
}

/** Lays out one path's tensors from element 0; returns offsets and the list of (offset, data) writes. */
function layoutPath(p: ProjectorPathParams, int8: boolean, name: string): { path: Omit<PackedPath,
  'buffer'>; writes: Write[]; size: number } {
  let n = 0;
  const writes: Write[] = [];
  const put = (data: Float32Array | Uint32Array) => {
    const off = n;
    writes.push([off, data]);
    n = alignUp(n + data.length, ALIGN);
    return off;
  };
  const lin = (l: LinearParams): PackedLinear => {
    if (!int8) return { w: put(l.weight), b: l.bias ? put(l.bias) : -1, s: -1, outDim: l.outDim, inDim: l.inDim };
    const quant = l.quant ?? quantizeInt8(l.weight, l.outDim, l.inDim, name);
    return { w: put(packInt8Rows(quant.weight, l.outDim, l.inDim)), s: put(quant.scale), b: l.bias ? put(l.bias) : -1,
      outDim: l.outDim, inDim: l.inDim };
  };
  const ffn = (b: FFNBlockParams): PackedFFN => ({ norm: put(b.norm), w1: lin(b.w1), w2: lin(b.w2) });
  const path = {
    in: lin(p.in),
    mlp1: p.mlp1.map(ffn),
    scalarMlp2: p.scalarMlp2.map(ffn),
    scalarHead: lin(p.scalarHead),
    projMlp2: p.projMlp2.map(ffn),
    projOut: lin(p.projOut),
    gateLogit: p.gateLogit,
  };
  return { path, writes, size: Math.max(n, ALIGN) };
}

function shift(path: Omit<PackedPath, 'buffer'>, base: number, buffer: number): PackedPath {
  const lin = (l: PackedLinear): PackedLinear => ({ ...l, w: l.w + base, b: l.b < 0 ? -1 : l.b + base, s: l.s < 0 ? -1 : l.s + base });
  const ffn = (f: PackedFFN): PackedFFN => ({ norm: f.norm + base, w1: lin(f.w1), w2: lin(f.w2) });
  return {
    buffer,
    in: lin(path.in),
    mlp1: path.mlp1.map(ffn),
    scalarMlp2: path.scalarMlp2.map(ffn),
    scalarHead: lin(path.scalarHead),
    projMlp2: path.projMlp2.map(ffn),
    projOut: lin(path.projOut),
    gateLogit: path.gateLogit,
  };
}

/** Uploads all open paths. `maxBufferBytes` is the largest buffer the kernels may bind whole. */
export function uploadWeights(device: GPUDevice, weights: FuserWeights, dtype: WeightDType, maxBufferBytes: number): PackedWeights {
  const int8 = dtype === 'int8';
  const bytes = int8 ? 4 : dtypeBytes(dtype);
  const maxElems = Math.floor(maxBufferBytes / bytes / ALIGN) * ALIGN;
  type Pending = { layer: number; which: 'key' | 'value'; layout: ReturnType<typeof layoutPath>; base: number; buffer: number };
  const pending: Pending[] = [];
  const bufferElems: number[] = [];
  weights.layers.forEach((layer, l) => {
    for (const which of ['key', 'value'] as const) {
      const p = layer[which];
      if (!isGateOpen(p)) continue;
      const layout = layoutPath(p, int8, `${l}.${which}`);
      if (layout.size > maxElems)
        throw new MemoryBudgetError(`fuser layer ${l} ${which} path needs ${layout.size * bytes} bytes, above the ${maxBufferBytes}-byte weight buffer limit (device storage binding limit or maxWeightBufferBytes)`, {
          field: `layers.${l}.${which}`,
          expected: maxBufferBytes,
          actual: layout.size * bytes,
        });
      let buffer = bufferElems.length - 1;
      if (buffer < 0 || bufferElems[buffer] + layout.size > maxElems) {
        bufferElems.push(0);
        buffer++;
      }
      pending.push({ layer: l, which, layout, base: bufferElems[buffer], buffer });
      bufferElems[buffer] += layout.size;
    }
  });

  const buffers: GPUBuffer[] = [];
  const hosts: (Float32Array | Uint16Array | Uint32Array)[] = [];
  try {
    bufferElems.forEach((elems, i) => {
      const size = alignUp(elems * bytes, 16);
      const buf = device.createBuffer({ label: `c2c.fuser.weights.${i}`, size, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
      buffers.push(buf);
      const range = buf.getMappedRange();
      hosts.push(dtype === 'f16' ? new Uint16Array(range) : int8 ? new Uint32Array(range) : new Float32Array(range));
    });
  } catch (e) {
    // getMappedRange throws when the allocation failed (out of memory): release what was made.
    buffers.forEach((b) => b.destroy());
    throw new MemoryBudgetError(`allocating ${bufferElems.reduce((s, n) => s + n * bytes, 0)} bytes of fuser weights failed: ${(e as Error).message}`, {}, { cause: e });
  }
  const layers: PackedWeights['layers'] = weights.layers.map(() => ({ key: null, value: null }));
  for (const p of pending) {
    const host = hosts[p.buffer];
    for (const [off, data] of p.layout.writes) {
      const at = p.base + off;
      if (data instanceof Uint32Array || host instanceof Float32Array) host.set(data, at);
      else if (host instanceof Uint32Array) new Float32Array(host.buffer, host.byteOffset).set(data, at); // f32 words beside int8
      else for (let i = 0; i < data.length; i++) host[at + i] = float32ToFloat16Bits(data[i]);
    }
    layers[p.layer][p.which] = shift(p.layout.path, p.base, p.buffer);
  }
  for (const b of buffers) b.unmap();
  return { buffers, layers, bytes: bufferElems.reduce((s, e) => s + alignUp(e * bytes, 16), 0) };
}
