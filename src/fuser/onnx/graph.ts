/**
 * Builds the whole C2C fuser (every receiver layer, K and V paths) as one ONNX graph (opset 17, standard ops
 * only, so onnxruntime-web's wasm EP and onnxruntime-node's CPU EP both run it). The forward is
 * docs/fuser-format.md "Forward": inputs `r{l}.key|value` `[Hr, S, Dr]` and `s{j}.key|value` `[Hs, S, Ds]`
 * (S symbolic), outputs `f{l}.key|value` `[Hr, S, Dr]`. Linear weights are stored transposed (`[in, out]`)
 * so MatMul needs no runtime transpose. Closed-gate paths are an Identity of the receiver input.
 */
import type { FFNBlockParams, FuserWeights, LinearParams, ProjectorPathParams } from '../types';
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

  linear(x: string, p: LinearParams, prefix: string): string {
    const w = this.init(`${prefix}.wt`, [p.inDim, p.outDim], transposeWeight(p));
    const y = this.op('MatMul', [x, w], `${prefix}.mm`);
    if (!p.bias) return y;
    return this.op('Add', [y, this.init(`${prefix}.b`, [p.outDim], p.bias)], `${prefix}.y`);
  }

  /** x / sqrt(mean(x²) + eps) · weight over the last axis. */
  rmsNorm(x: string, weight: Float32Array, eps: number, prefix: string): string {
    const sq = this.op('Mul', [x, x], `${prefix}.sq`);
    const ms = this.op('ReduceMean', [sq], `${prefix}.ms`, { axes: { ints: [-1] }, keepdims: { i: 1 } });
    const rms = this.op('Sqrt', [this.op('Add', [ms, this.scalar(eps)], `${prefix}.mse`)], `${prefix}.rms`);
    const xn = this.op('Div', [x, rms], `${prefix}.xn`);
    return this.op('Mul', [xn, this.init(`${prefix}.g`, [weight.length], weight)], `${prefix}.y`);
  }

  /** Exact GELU: 0.5·x·(1 + erf(x/√2)). */
  gelu(x: string, prefix: string): string {
    const e = this.op('Erf', [this.op('Div', [x, this.scalar(Math.SQRT2)], `${prefix}.xs`)], `${prefix}.erf`);
    const onePlus = this.op('Add', [e, this.scalar(1)], `${prefix}.ope`);
    const half = this.op('Mul', [x, this.scalar(0.5)], `${prefix}.hx`);
    return this.op('Mul', [half, onePlus], `${prefix}.y`);
  }

  ffnStack(x: string, blocks: FFNBlockParams[], eps: number, prefix: string): string {
    let h = x;
    blocks.forEach((b, i) => {
      const p = `${prefix}.${i}`;
      const u = this.gelu(this.linear(this.rmsNorm(h, b.norm, eps, `${p}.norm`), b.w1, `${p}.w1`), `${p}.act`);
      h = this.op('Add', [h, this.linear(u, b.w2, `${p}.w2`)], `${p}.res`);
    });
    return h;
  }
}

/** Emits the graph of `weights`; `S` is the symbolic token count of every input and output. */
export function buildFuserGraph(weights: FuserWeights): FuserGraph {
  const cfg = weights.config;
  const { receiver: rd, sharer: sd } = cfg;
  const hr = rd.kvHeads, dr = rd.headDim, hs = sd.kvHeads, ds = sd.headDim;
  const b = new Builder();
  const receiverInputs: [number, KVKind][] = [];
  const sharerUsed = new Map<string, [number, KVKind]>();
  const flatSharer = new Map<string, string>(); // one [S, Hs·Ds] view per used sharer input
  const outputs: ValueInfoSpec[] = [];

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
      const x = b.op('Concat', [flatSharer.get(sName)!, rFlat], `${p}.x`, { axis: { i: 1 } });
      const eps = cfg.rmsNormEps;
      const h1 = b.ffnStack(b.linear(x, path.in, `${p}.in`), path.mlp1, eps, `${p}.mlp1`);
      const proj = b.linear(b.ffnStack(h1, path.projMlp2, eps, `${p}.proj_mlp2`), path.projOut, `${p}.proj_out`);
      const z = b.linear(b.ffnStack(h1, path.scalarMlp2, eps, `${p}.scalar_mlp2`), path.scalarHead, `${p}.scalar_head`);
      const w = b.op('Sigmoid', [b.op('Div', [z, b.scalar(cfg.scalarTemperature)], `${p}.zt`)], `${p}.w`); // [S, Hr]
      const w3 = b.op('Reshape', [w, b.shape([0, hr, 1])], `${p}.w3`);
      const p3 = b.op('Reshape', [proj, b.shape([0, hr, dr])], `${p}.p3`);
      const fused = b.op('Add', [rT, b.op('Mul', [w3, p3], `${p}.wp`)], `${p}.fused`); // [S, Hr, Dr]
      b.op('Transpose', [fused], `${p}.back`, { perm: { ints: [1, 0, 2] } }, out);
    }
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
