/**
 * Builds the C2C fuser of a group of receiver layers (K and V paths) as one ONNX graph (opset 17, standard ops
 * only, so onnxruntime-web's wasm EP and onnxruntime-node's CPU EP both run it). The forward is
 * docs/fuser-format.md "Forward": inputs `r{l}.key|value` `[Hr, S, Dr]` and `s{j}.key|value` `[Hs, S, Ds]`
 * (S symbolic), outputs `f{l}.key|value` `[Hr, S, Dr]`, for the open paths only (a closed path is the receiver
 * itself: the caller copies it). Linear weights are stored transposed (`[in, out]`) so MatMul needs no runtime
 * transpose; the open paths run as one batch.
 * float16 KV: every input also exists as `<name>.f16` (float16); the caller feeds the KV under its dtype's name
 * and an empty `[H, 0, D]` tensor under the other (the graph concatenates the pair along S after a Cast to f32;
 * overridable initializers would spare the empty feed, but onnxruntime-node ignores feeds for them). Every
 * output also exists as `<name>.f16` (one Cast, rounded once); the caller fetches the receiver's dtype. One
 * graph serves f32, f16 and mixed pairs.
 */
import type { FFNBlockParams, FuserWeights, LinearParams, ProjectorPathParams } from '../../types';
import { DataType, type GraphSpec, type InitializerSpec, type NodeSpec, type ValueInfoSpec } from './protobuf';

export type KVKind = 'key' | 'value';

export interface FuserGraph {
  graph: GraphSpec;
  /** The open paths `[receiver layer, kind]` of the graph: each reads `r{l}.{kind}` and writes `f{l}.{kind}`. */
  receiverInputs: [number, KVKind][];
  /** Sharer inputs `[sharer layer, kind]` read by at least one open path. */
  sharerInputs: [number, KVKind][];
  /** Bytes of the graph's weight initializers (f32). */
  weightBytes: number;
}

export const receiverName = (l: number, kv: KVKind): string => `r${l}.${kv}`;
export const sharerName = (j: number, kv: KVKind): string => `s${j}.${kv}`;
export const outputName = (l: number, kv: KVKind): string => `f${l}.${kv}`;
/** The float16 twin of an input or output name. */
export const f16Name = (name: string): string => `${name}.f16`;

/** `[out, in]` row-major → `[in, out]` row-major, written into `t` at element offset `at`. */
function transposeInto(p: LinearParams, t: Float32Array, at: number): void {
  for (let o = 0; o < p.outDim; o++) {
    for (let i = 0; i < p.inDim; i++) t[at + i * p.outDim + o] = p.weight[o * p.inDim + i];
  }
}

class Builder {
  readonly nodes: NodeSpec[] = [];
  readonly inits: InitializerSpec[] = [];
  private readonly consts = new Map<string, string>();
  private n = 0;

  private fresh(hint: string): string {
    return `${hint}_${this.n++}`;
  }

  op(op: string, inputs: string[], hint: string, attrs?: NodeSpec['attrs'], output?: string): string {
    const out = output ?? this.fresh(hint);
    this.nodes.push({ op, inputs, outputs: [out], name: `${op}_${this.n++}`, attrs });
    return out;
  }

  init(name: string, dims: number[], data: Float32Array | BigInt64Array | Uint16Array): string {
    this.inits.push({ name, dims, data });
    return name;
  }

  /** A shared f32 scalar constant. */
  scalar(v: number): string {
    const key = `f:${v}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.init(`const_${this.consts.size}`, [], Float32Array.of(v));
      this.consts.set(key, name);
    }
    return name;
  }

  /** A shared int64 shape constant for Reshape. */
  shape(dims: number[]): string {
    const key = `i:${dims.join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.init(`shape_${this.consts.size}`, [dims.length], BigInt64Array.from(dims.map(BigInt)));
      this.consts.set(key, name);
    }
    return name;
  }

  /**
   * Exact GELU: (x·(1 + erf(x/√2)))·0.5, in the node order onnxruntime's GeluFusion matches: one Gelu kernel
   * instead of five elementwise passes. Profiled at the released dims after it, MatMul is 88% of the kernel time.
   */
  gelu(x: string, prefix: string): string {
    const e = this.op('Erf', [this.op('Div', [x, this.scalar(Math.SQRT2)], `${prefix}.xs`)], `${prefix}.erf`);
    const onePlus = this.op('Add', [e, this.scalar(1)], `${prefix}.ope`);
    return this.op('Mul', [this.op('Mul', [x, onePlus], `${prefix}.xo`), this.scalar(0.5)], `${prefix}.y`);
  }
}

/** Stacks per-path `[rows, cols]` arrays into one `[P, rows, cols]` array. */
function stack(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The P open paths' Linear `pick(path)` as one batched `[P, in, out]` weight (+ `[P, 1, out]` bias). */
function stackedLinear(b: Builder, x: string, paths: ProjectorPathParams[], pick: (p: ProjectorPathParams) => LinearParams,
  prefix: string): string {
  const ls = paths.map(pick);
  const { inDim, outDim } = ls[0];
  // Transposed straight into the stacked array: one copy of the weights per graph, not two.
  const stacked = new Float32Array(ls.length * inDim * outDim);
  ls.forEach((l, i) => transposeInto(l, stacked, i * inDim * outDim));
  const w = b.init(`${prefix}.wt`, [ls.length, inDim, outDim], stacked);
  const y = b.op('MatMul', [x, w], `${prefix}.mm`);
  if (!ls[0].bias) return y;
  return b.op('Add', [y, b.init(`${prefix}.b`, [ls.length, 1, outDim], stack(ls.map((l) => l.bias!)))], `${prefix}.y`);
}

/** x + W2 · GELU(W1 · RMSNorm(x)) per block, every open path at once (x: `[P, S, hidden]`). */
function stackedFfn(b: Builder, x: string, paths: ProjectorPathParams[], blocks: (p: ProjectorPathParams) => FFNBlockParams[],
  eps: number, prefix: string): string {
  let h = x;
  for (let i = 0; i < blocks(paths[0]).length; i++) {
    const p = `${prefix}.${i}`;
    // Pow(h, 2), the form onnxruntime's layer-norm fusions start from (here the norm stays separate ops, ~2% of the time).
    const sq = b.op('Pow', [h, b.scalar(2)], `${p}.sq`);
    const ms = b.op('ReduceMean', [sq], `${p}.ms`, { axes: { ints: [-1] }, keepdims: { i: 1 } });
    const rms = b.op('Sqrt', [b.op('Add', [ms, b.scalar(eps)], `${p}.mse`)], `${p}.rms`);
    const norms = paths.map((q) => blocks(q)[i].norm);
    const xn = b.op('Mul', [b.op('Div', [h, rms], `${p}.xn`), b.init(`${p}.g`, [paths.length, 1, norms[0].length], stack(norms))],
      `${p}.normed`);
    const u = b.gelu(stackedLinear(b, xn, paths, (q) => blocks(q)[i].w1, `${p}.w1`), `${p}.act`);
    h = b.op('Add', [h, stackedLinear(b, u, paths, (q) => blocks(q)[i].w2, `${p}.w2`)], `${p}.res`);
  }
  return h;
}

/** Open paths of `layers` (every path whose hard gate is open). */
export function openPaths(weights: FuserWeights, layers: readonly number[]): [number, KVKind][] {
  return layers.flatMap((l) => (['key', 'value'] as const).filter((kv) => weights.layers[l][kv].gateLogit > 0).map(
    (kv): [number, KVKind] => [l, kv]));
}

/**
 * Emits the graph of receiver `layers` (default: all); null when none of their paths is open. `S` is the
 * symbolic token count. All projector paths have the same dims, so the open ones run as one batch `[P, S, ·]`
 * (batched MatMul against stacked weights): ~8× fewer nodes than one chain per path, which matters on the wasm EP.
 */
export function buildFuserGraph(weights: FuserWeights, layers?: readonly number[]): FuserGraph | null {
  const cfg = weights.config;
  const { receiver: rd, sharer: sd } = cfg;
  const hr = rd.kvHeads, dr = rd.headDim, hs = sd.kvHeads, ds = sd.headDim;
  const open = openPaths(weights, layers ?? weights.layers.map((_, l) => l));
  if (!open.length) return null;
  const b = new Builder();
  const inputs: ValueInfoSpec[] = [];
  const outputs: ValueInfoSpec[] = [];
  const sharerUsed = new Map<string, [number, KVKind]>();
  const flatSharer = new Map<string, string>(); // one [S, Hs·Ds] view per used sharer input
  const axis0 = b.init('axes_0', [1], BigInt64Array.of(0n));

  /** Declares `name` (f32) and `name.f16` and returns their f32 concatenation `[h, S, d]` (one of them is empty). */
  const dualInput = (name: string, h: number, d: number): string => {
    inputs.push({ name, dims: [h, 'S_f32', d] }, { name: f16Name(name), dims: [h, 'S_f16', d], elemType: DataType.FLOAT16 });
    const wide = b.op('Cast', [f16Name(name)], `${name}.wide`, { to: { i: DataType.FLOAT } });
    return b.op('Concat', [name, wide], `${name}.any`, { axis: { i: 1 } });
  };
  // [H, S, D] → [S, H, D] → [S, H·D]
  const flatten = (input: string, h: number, d: number, prefix: string): string => {
    const t = b.op('Transpose', [input], `${prefix}.t`, { perm: { ints: [1, 0, 2] } });
    return b.op('Reshape', [t, b.shape([0, h * d])], `${prefix}.flat`);
  };

  const xs: string[] = [];
  const rs: string[] = [];
  for (const [l, kv] of open) {
    const j = cfg.layerMap[l];
    const sName = sharerName(j, kv);
    if (!flatSharer.has(sName)) {
      sharerUsed.set(sName, [j, kv]);
      flatSharer.set(sName, flatten(dualInput(sName, hs, ds), hs, ds, sName));
    }
    const p = `l${l}.${kv}`;
    const rT = b.op('Transpose', [dualInput(receiverName(l, kv), hr, dr)], `${p}.rt`, { perm: { ints: [1, 0, 2] } }); // [S, Hr, Dr]
    const rFlat = b.op('Reshape', [rT, b.shape([0, hr * dr])], `${p}.rflat`);
    const x = b.op('Concat', [flatSharer.get(sName)!, rFlat], `${p}.x`, { axis: { i: 1 } }); // [S, in]
    xs.push(b.op('Unsqueeze', [x, axis0], `${p}.x1`));
    rs.push(b.op('Unsqueeze', [rT, axis0], `${p}.r1`));
  }

  const paths = open.map(([l, kv]) => weights.layers[l][kv]);
  const eps = cfg.rmsNormEps;
  const x = b.op('Concat', xs, 'x', { axis: { i: 0 } }); // [P, S, in]
  const rStack = b.op('Concat', rs, 'r', { axis: { i: 0 } }); // [P, S, Hr, Dr]
  const h1 = stackedFfn(b, stackedLinear(b, x, paths, (q) => q.in, 'in'), paths, (q) => q.mlp1, eps, 'mlp1');
  const proj = stackedLinear(b, stackedFfn(b, h1, paths, (q) => q.projMlp2, eps, 'proj_mlp2'), paths, (q) => q.projOut, 'proj_out');
  const z = stackedLinear(b, stackedFfn(b, h1, paths, (q) => q.scalarMlp2, eps, 'scalar_mlp2'), paths, (q) => q.scalarHead, 'scalar_head');
  const w = b.op('Sigmoid', [b.op('Div', [z, b.scalar(cfg.scalarTemperature)], 'zt')], 'w'); // [P, S, Hr]
  const w4 = b.op('Reshape', [w, b.shape([0, 0, hr, 1])], 'w4');
  const p4 = b.op('Reshape', [proj, b.shape([0, 0, hr, dr])], 'p4');
  const fused = b.op('Add', [rStack, b.op('Mul', [w4, p4], 'wp')], 'fused'); // [P, S, Hr, Dr]
  const back = b.op('Transpose', [fused], 'back', { perm: { ints: [0, 2, 1, 3] } }); // [P, Hr, S, Dr]
  const names = open.map(([l, kv]) => outputName(l, kv));
  const parts = names.map((o) => `${o}.part`);
  if (open.length === 1) b.op('Identity', [back], 'single', undefined, parts[0]);
  else b.nodes.push({ op: 'Split', inputs: [back], outputs: parts, name: 'split', attrs: { axis: { i: 0 } } });
  names.forEach((o, i) => {
    b.op('Squeeze', [parts[i], axis0], `${o}.sq`, undefined, o);
    b.op('Cast', [o], `${o}.h`, { to: { i: DataType.FLOAT16 } }, f16Name(o));
    outputs.push({ name: o, dims: [hr, 'S', dr] }, { name: f16Name(o), dims: [hr, 'S', dr], elemType: DataType.FLOAT16 });
  });

  const weightBytes = b.inits.reduce((n, t) => n + ('data' in t && t.data instanceof Float32Array ? t.data.byteLength : 0), 0);
  return {
    graph: { name: 'c2c_fuser', nodes: b.nodes, initializers: b.inits, inputs, outputs },
    receiverInputs: open,
    sharerInputs: [...sharerUsed.values()],
    weightBytes,
  };
}
