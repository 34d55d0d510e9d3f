/**
 * Shared pieces of the stand-in tests: the reduced set CI generates (2 layers, narrow bodies, real KV,
 * vocab, tokenizer and fuser widths; cached under .cache/standins across runs), torch detection for the
 * Python checks, and a direct onnxruntime-node runner for the decoder graphs.
 */
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { float16BitsToFloat32 } from '../../src/util/half';
import { ensureStandins, type StandinOptions, type StandinPaths } from '../../src/standins/ensure';
import { FLAVOUR_FILE, type Flavour } from '../../src/standins/flavours';

export const PYTHON = '/usr/bin/python3';
export const HAS_TORCH = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
export const NO_TORCH = `${PYTHON} cannot import torch (Debian python3-torch is not installed)`;

/** The reduced pair CI generates: every family and flavour, both fusers at real width, one conversion. */
export const CI_STANDINS: StandinOptions = { layers: 2, hidden: 32, conversions: ['int8'] };

let ci: Promise<StandinPaths> | null = null;
export function ciStandins(): Promise<StandinPaths> {
  ci ??= ensureStandins(CI_STANDINS);
  return ci;
}

export const modelFile = (dir: string, f: Flavour) => `${dir}/onnx/${FLAVOUR_FILE[f]}`;

export const ids64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, rows[0].length]);

/** One decoder step as onnx-community's I/O: ids, mask, positions and past K/V (empty when `past` is null). */
export async function runStep(
  session: ort.InferenceSession,
  step: { input_ids: number[][]; attention_mask: number[][]; position_ids: number[][] },
  past: Record<string, ort.Tensor> | null,
  kv: { layers: number; heads: number; headDim: number; type: 'float32' | 'float16' },
  extra: Record<string, ort.Tensor> = {},
): Promise<Record<string, ort.Tensor>> {
  const feeds: Record<string, ort.Tensor> = { input_ids: ids64(step.input_ids), attention_mask: ids64(step.attention_mask), position_ids: ids64(step.position_ids), ...extra };
  const batch = step.input_ids.length;
  for (let i = 0; i < kv.layers; i++) {
    for (const which of ['key', 'value']) {
      feeds[`past_key_values.${i}.${which}`] = past?.[`present.${i}.${which}`]
        ?? new ort.Tensor(kv.type, kv.type === 'float16' ? new Uint16Array(0) : new Float32Array(0), [batch, kv.heads, 0, kv.headDim]);
    }
  }
  return session.run(feeds);
}

/** float16 bits (as ORT returns them in Node) or float32 data → Float32Array. */
export function asFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type !== 'float16') throw new Error(`unexpected tensor type ${t.type}`);
  return Float32Array.from(t.data as Uint16Array, float16BitsToFloat32);
}

/**
 * Where two arrays first differ ("length a vs b" or "[i] x vs y"), or null when equal. For large typed
 * arrays: expect().toEqual would render a multi-megabyte diff on failure.
 */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): string | null {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `[${i}] ${a[i]} vs ${b[i]}`;
  return null;
}
