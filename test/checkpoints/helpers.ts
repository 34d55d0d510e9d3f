/**
 * Test helpers for official checkpoints: fixture paths and readers, and a tiny writer of torch-style
 * state-dict zips (the same protocol-2 opcodes torch.save emits) so tests can craft mismatched, oversized
 * or otherwise hostile files from real fixture tensors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { contiguousStride, toBFloat16Bytes as toBf16Bytes } from '../../src/standins/torch-save';
import { zipSync, type Zippable } from 'fflate';
import { parseSafetensors, tensorToFloat32, tensorToNumbers } from '../../src/fuser/safetensors';
import type { KVCache } from '../../src/types';

export const OFFICIAL_DIR = join(import.meta.dirname, '..', 'fixtures', 'official');
export const FIXTURES = ['tiny_qwen', 'tiny_llama_knn'] as const;

export const fixtureFile = (...p: string[]): Uint8Array => new Uint8Array(readFileSync(join(OFFICIAL_DIR, ...p)));

/** All files of a fixture checkpoint as the browser would hold them after fetching. */
export function fixtureFiles(name: string, projectors: number): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {
    'config.json': fixtureFile(name, 'config.json'),
    'final/projector_config.json': fixtureFile(name, 'final', 'projector_config.json'),
  };
  for (let i = 0; i < projectors; i++) {
    files[`final/projector_${i}.pt`] = fixtureFile(name, 'final', `projector_${i}.pt`);
    files[`final/projector_${i}.json`] = fixtureFile(name, 'final', `projector_${i}.json`);
  }
  return files;
}

export interface ExpectedCase {
  receiver: KVCache;
  sharer: KVCache;
  fused: KVCache;
}

/** expected.safetensors written by train/make_official_checkpoints.py. */
export function loadExpected(name: string, receiverLayers: number, sharerLayers: number): { cases: ExpectedCase[]; layerMap: number[] } {
  const f = parseSafetensors(fixtureFile(name, 'expected.safetensors'), 'expected.safetensors');
  const cache = (prefix: string, layers: number): KVCache =>
    Array.from({ length: layers }, (_, l) => {
      const kv = (p: string) => {
        const t = f.tensors.get(`${prefix}.${l}.${p}`)!;
        return { data: tensorToFloat32(t), heads: t.shape[0], seq: t.shape[1], headDim: t.shape[2] };
      };
      return { key: kv('key'), value: kv('value') };
    });
  const cases: ExpectedCase[] = [];
  for (let c = 0; c < Number(f.metadata.num_cases); c++) {
    if (tensorToNumbers(f.tensors.get(`c${c}.seq`)!)[0] <= 0) throw new Error('bad fixture');
    cases.push({ receiver: cache(`c${c}.receiver`, receiverLayers), sharer: cache(`c${c}.sharer`, sharerLayers),
      fused: cache(`c${c}.fused`, receiverLayers) });
  }
  return { cases, layerMap: JSON.parse(f.metadata.layer_map) as number[] };
}

// ---------- pickle / zip writer ----------

export class PickleWriter {
  private parts: number[] = [];
  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.op(0x58, ...u32(b.length));
    for (const x of b) this.parts.push(x);
    return this;
  }
  global(module: string, name: string): this {
    this.op(0x63);
    for (const ch of `${module}\n${name}\n`) this.parts.push(ch.charCodeAt(0));
    return this;
  }
  int(v: number | bigint): this {
    if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setInt32(0, v, true);
      return this.op(0x4a, ...b);
    }
    // LONG1, 8 bytes little-endian two's complement.
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n;
    const b: number[] = [];
    for (let i = 0; i < 8; i++) b.push(Number((x >> BigInt(8 * i)) & 0xffn));
    return this.op(0x8a, 8, ...b);
  }
  tuple(items: (number | bigint)[]): this {
    this.op(0x28);
    for (const v of items) this.int(v);
    return this.op(0x74);
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.parts);
  }
}

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

export interface TensorSpec {
  name: string;
  /** f32 values, written as bf16 (truncated: fixture values are bf16-exact already). */
  data: Float32Array;
  shape: number[];
  stride?: number[];
  offset?: number;
  /** Declared storage numel (default: data.length). */
  storageNumel?: number | bigint;
  shapeOverride?: (number | bigint)[];
  /** Storage key (default: the tensor's index), so several tensors can view one storage. */
  storage?: string;
}

/**
 * A torch.save-style state-dict pickle over bf16 (or f32) storages named 0, 1, ... — with knobs for hostile cases
 * (declared numel, shape, stride, offset, shared storages). src/standins/torch-save.ts writes well-formed files.
 */
export function stateDictPickle(specs: TensorSpec[], dtype: 'bfloat16' | 'float32' = 'bfloat16'): Uint8Array {
  const storageClass = dtype === 'bfloat16' ? 'BFloat16Storage' : 'FloatStorage';
  const w = new PickleWriter().op(0x80, 2).global('collections', 'OrderedDict').op(0x29, 0x52).op(0x28);
  specs.forEach((s, i) => {
    const stride = s.stride ?? contiguousStride(s.shape);
    w.str(s.name).global('torch._utils', '_rebuild_tensor_v2').op(0x28);
    const numel = s.storageNumel ?? s.data.length;
    w.op(0x28).str('storage').global('torch', storageClass).str(s.storage ?? String(i)).str('cpu').int(numel).op(0x74, 0x51);
    w.int(s.offset ?? 0).tuple(s.shapeOverride ?? s.shape).tuple(stride).op(0x89);
    w.global('collections', 'OrderedDict').op(0x29, 0x52).op(0x74, 0x52);
  });
  return w.op(0x75, 0x2e).bytes();
}

/** Zips a pickle (+ bf16 storages of `specs`) like torch 2.x does: `archive/` prefix, byteorder record. */
export function torchZip(pkl: Uint8Array, specs: TensorSpec[] = [], extra: Record<string, Uint8Array> = {}): Uint8Array {
  const entries: Zippable = { 'archive/data.pkl': [pkl, { level: 0 }] };
  specs.forEach((s, i) => {
    entries[`archive/data/${i}`] = [toBf16Bytes(s.data), { level: 0 }];
  });
  entries['archive/byteorder'] = [new TextEncoder().encode('little'), { level: 0 }];
  entries['archive/version'] = [new TextEncoder().encode('3\n'), { level: 0 }];
  for (const [k, v] of Object.entries(extra)) entries[k] = [v, { level: 0 }];
  return zipSync(entries);
}

export { contiguousStride, toBf16Bytes };

/** Time a synchronous or async call, returning the thrown error (or undefined) and the elapsed ms. */
export async function timedError(fn: () => unknown): Promise<{ error: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    await fn();
    return { error: undefined, ms: performance.now() - t0 };
  } catch (e) {
    return { error: e, ms: performance.now() - t0 };
  }
}
