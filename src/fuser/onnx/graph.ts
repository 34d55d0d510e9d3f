/**
 * Builds the whole C2C fuser (every receiver layer, K and V paths) as one ONNX graph (opset 17, standard ops
 * only, so onnxruntime-web's wasm EP and onnxruntime-node's CPU EP both run it). The forward is
 * docs/fuser-format.md "Forward": inputs `r{l}.key|value` `[Hr, S, Dr]` and `s{j}.key|value` `[Hs, S, Ds]`
 * (S symbolic), outputs `f{l}.key|value` `[Hr, S, Dr]`. Linear weights are stored transposed (`[in, out]`)
 * so MatMul needs no runtime transpose; the open paths run as one batch. Closed-gate paths are an Identity of
 * the receiver input.
 */
import type { FFNBlockParams, FuserWeights, LinearParams, ProjectorPathParams } from '../../types';
import type { GraphSpec, InitializerSpec, NodeSpec, ValueInfoSpec } from './protobuf';

export type KVKind = 'key' | 'value';

export interface FuserGraph {
  graph: GraphSpec;
  /** Receiver inputs `[layer, kind]` the graph reads (all of them: closed paths pass them through). */
  receiverInputs: [number, KVKind][];
  /** Sharer inputs `[sharer layer, kind]` read by at least one open path. */
  sharerInputs: [number, KVKind][];
}

export const receiverName = (l: number, kv: KVKind): string => `r${l}.${kv}`;
export const sharerName = (j: number, kv: KVKind): string => `s${j}.${kv}`;
export const outputName = (l: number, kv: KVKind): string => `f${l}.${kv}`;

/** `[out, in]` row-major → `[in, out]` row-major. */
function transposeWeight(p: LinearParams): Float32Array {
  const t = new Float32Array(p.weight.length);
  for (let o = 0; o < p.outDim; o++) {
    for (let i = 0; i < p.inDim; i++) t[i * p.outDim + o] = p.weight[o * p.inDim + i];
  }
  return t;
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

  init(name: string, dims: number[], data: Float32Array | BigInt64Array): string {
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

  /** Exact GELU: 0.5·x·(1 + erf(x/√2)). */
  gelu(x: string, prefix: string): string {
    const e = this.op('Erf', [this.op('Div', [x, this.scalar(Math.SQRT2)], `${prefix}.xs`)], `${prefix}.erf`);
    const onePlus = this.op('Add', [e, this.scalar(1)], `${prefix}.ope`);
    const half = this.op('Mul', [x, this.scalar(0.5)], `${prefix}.hx`);
    return this.op('Mul', [half, onePlus], `${prefix}.y`);
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
function stackedLinear(b: Builder, x: string, paths: ProjectorPathParams[], pick: (p: ProjectorPathParams) => LinearParams, prefix: string): string {
  const ls = paths.map(pick);
  const { inDim, outDim } = ls[0];
  const w = b.init(`${prefix}.wt`, [ls.length, inDim, outDim], stack(ls.map(transposeWeight)));
  const y = b.op('MatMul', [x, w], `${prefix}.mm`);
  if (!ls[0].bias) return y;
  return b.op('Add', [y, b.init(`${prefix}.b`, [ls.length, 1, outDim], stack(ls.map((l) => l.bias!)))], `${prefix}.y`);
}

/** x + W2 · GELU(W1 · RMSNorm(x)) per block, every open path at once (x: `[P, S, hidden]`). */
function stackedFfn(b: Builder, x: string, paths: ProjectorPathParams[], blocks: (p: ProjectorPathParams) => FFNBlockParams[], eps: number, prefix: string): string {
  let h = x;
  for (let i = 0; i < blocks(paths[0]).length; i++) {
    const p = `${prefix}.${i}`;
    const sq = b.op('Mul', [h, h], `${p}.sq`);
    const ms = b.op('ReduceMean', [sq], `${p}.ms`, { axes: { ints: [-1] }, keepdims: { i: 1 } });
    const rms = b.op('Sqrt', [b.op('Add', [ms, b.scalar(eps)], `${p}.mse`)], `${p}.rms`);
    const norms = paths.map((q) => blocks(q)[i].norm);
    const xn = b.op('Mul', [b.op('Div', [h, rms], `${p}.xn`), b.init(`${p}.g`, [paths.length, 1, norms[0].length], stack(norms))], `${p}.normed`);
    const u = b.gelu(stackedLinear(b, xn, paths, (q) => blocks(q)[i].w1, `${p}.w1`), `${p}.act`);
    h = b.op('Add', [h, stackedLinear(b, u, paths, (q) => blocks(q)[i].w2, `${p}.w2`)], `${p}.res`);
  }
  return h;
}

/**
 * Emits the graph of `weights`; `S` is the symbolic token count of every input and output. All projector
 * paths have the same dims, so the open ones run as one batch `[P, S, ·]` (batched MatMul against stacked
 * weights): ~8× fewer nodes than one chain per path, which matters on the wasm EP (per-node overhead).
 */
export function buildFuserGraph(weights: FuserWeights): FuserGraph {
  const cfg = weights.config;
  const { receiver: rd, sharer: sd } = cfg;
  const hr = rd.kvHeads, dr = rd.headDim, hs = sd.kvHeads, ds = sd.headDim;
  const b = new Builder();
  const receiverInputs: [number, KVKind][] = [];
  const sharerUsed = new Map<string, [number, KVKind]>();
  const flatSharer = new Map<string, string>(); // one [S, Hs·Ds] view per used sharer input
  const outputs: ValueInfoSpec[] = [];
  const open: { path: ProjectorPathParams; out: string; x: string; r: string }[] = [];
  const axis0 = b.init('axes_0', [1], BigInt64Array.of(0n));

  // [H, S, D] → [S, H, D] → [S, H·D]
  const flatten = (input: string, h: number, d: number, prefix: string): string => {
    const t = b.op('Transpose', [input], `${prefix}.t`, { perm: { ints: [1, 0, 2] } });
    return b.op('Reshape', [t, b.shape([0, h * d])], `${prefix}.flat`);
  };

  for (let l = 0; l < cfg.receiver.numLayers; l++) {
    for (const kv of ['key', 'value'] as const) {
      const path: ProjectorPathParams = weights.layers[l][kv];
      const rName = receiverName(l, kv);
      const out = outputName(l, kv);
      receiverInputs.push([l, kv]);
      outputs.push({ name: out, dims: [hr, 'S', dr] });
      // Hard inference gate (0/1): a closed path is the receiver itself, so open paths need no gate multiply.
      if (!(path.gateLogit > 0)) {
        b.op('Identity', [rName], `${out}.id`, undefined, out);
        continue;
      }
      const j = cfg.layerMap[l];
      const sName = sharerName(j, kv);
      if (!flatSharer.has(sName)) {
        sharerUsed.set(sName, [j, kv]);
        flatSharer.set(sName, flatten(sName, hs, ds, sName));
      }
      const p = `l${l}.${kv}`;
      const rT = b.op('Transpose', [rName], `${p}.rt`, { perm: { ints: [1, 0, 2] } }); // [S, Hr, Dr]
      const rFlat = b.op('Reshape', [rT, b.shape([0, hr * dr])], `${p}.rflat`);
      const x = b.op('Concat', [flatSharer.get(sName)!, rFlat], `${p}.x`, { axis: { i: 1 } }); // [S, in]
      open.push({ path, out, x: b.op('Unsqueeze', [x, axis0], `${p}.x1`), r: b.op('Unsqueeze', [rT, axis0], `${p}.r1`) });
    }
  }

  if (open.length) {
    const paths = open.map((o) => o.path);
    const eps = cfg.rmsNormEps;
    const x = b.op('Concat', open.map((o) => o.x), 'x', { axis: { i: 0 } }); // [P, S, in]
    const rStack = b.op('Concat', open.map((o) => o.r), 'r', { axis: { i: 0 } }); // [P, S, Hr, Dr]
    const h1 = stackedFfn(b, stackedLinear(b, x, paths, (q) => q.in, 'in'), paths, (q) => q.mlp1, eps, 'mlp1');
    const proj = stackedLinear(b, stackedFfn(b, h1, paths, (q) => q.projMlp2, eps, 'proj_mlp2'), paths, (q) => q.projOut, 'proj_out');
    const z = stackedLinear(b, stackedFfn(b, h1, paths, (q) => q.scalarMlp2, eps, 'scalar_mlp2'), paths, (q) => q.scalarHead, 'scalar_head');
    const w = b.op('Sigmoid', [b.op('Div', [z, b.scalar(cfg.scalarTemperature)], 'zt')], 'w'); // [P, S, Hr]
    const w4 = b.op('Reshape', [w, b.shape([0, 0, hr, 1])], 'w4');
    const p4 = b.op('Reshape', [proj, b.shape([0, 0, hr, dr])], 'p4');
    const fused = b.op('Add', [rStack, b.op('Mul', [w4, p4], 'wp')], 'fused'); // [P, S, Hr, Dr]
    const back = b.op('Transpose', [fused], 'back', { perm: { ints: [0, 2, 1, 3] } }); // [P, Hr, S, Dr]
    const parts = open.map((o) => `${o.out}.part`);
    b.nodes.push({ op: 'Split', inputs: [back], outputs: parts, name: 'split', attrs: { axis: { i: 0 } } });
    open.forEach((o, i) => b.op('Squeeze', [parts[i], axis0], `${o.out}.sq`, undefined, o.out));
  }

  const sharerInputs = [...sharerUsed.values()];
  const inputs: ValueInfoSpec[] = [
    ...receiverInputs.map(([l, kv]) => ({ name: receiverName(l, kv), dims: [hr, 'S', dr] })),
    ...sharerInputs.map(([j, kv]) => ({ name: sharerName(j, kv), dims: [hs, 'S', ds] })),
  ];
  return {
    graph: { name: 'c2c_fuser', nodes: b.nodes, initializers: b.inits, inputs, outputs },
    receiverInputs,
    sharerInputs,
  };
}
