/**
 * A smoke check of generated model files at any size: each flavour is opened with onnxruntime-node and runs
 * one 8-token prefill on an empty cache; logits must be finite and present K/V must have the declared dims.
 * Reports load and step times (one run, on whatever CPU this is: not a benchmark).
 */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelArch } from '../presets';
import { FLAVOUR_FILE, FLAVOUR_IO_TYPE, type Flavour } from './flavours';
import { DataType } from '../fuser/onnx/protobuf';
import { readManifest, type ModelManifest } from './model-folder';
import { NODE_SESSION_OPTIONS } from '../util/ort-node-options';

export interface VerifyReport {
  model: string;
  flavour: Flavour;
  loadSeconds: number;
  stepSeconds: number;
  rssAfterLoadBytes: number;
}

export async function verifyModelFolder(dir: string, log: (s: string) => void = () => {}): Promise<VerifyReport[]> {
  const m = readManifest<ModelManifest>(dir);
  if (!m) throw new Error(`${dir} has no stand-in manifest`);
  const a = m.key.arch as ModelArch;
  const out: VerifyReport[] = [];
  const S = 8;
  for (const f of Object.keys(m.flavours) as Flavour[]) {
    const t0 = performance.now();
    const session = await ort.InferenceSession.create(join(dir, 'onnx', FLAVOUR_FILE[f]), NODE_SESSION_OPTIONS);
    const loadSeconds = (performance.now() - t0) / 1000;
    const rssAfterLoadBytes = process.memoryUsage().rss;
    const ids = (v: number[]) => new ort.Tensor('int64', BigInt64Array.from(v, BigInt), [1, v.length]);
    const half = FLAVOUR_IO_TYPE[f] === DataType.FLOAT16;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: ids(Array.from({ length: S }, (_, i) => 100 + 37 * i)),
      attention_mask: ids(new Array(S).fill(1)),
      position_ids: ids(Array.from({ length: S }, (_, i) => i)),
    };
    for (let i = 0; i < a.numLayers; i++) {
      for (const kv of ['key', 'value']) feeds[`past_key_values.${i}.${kv}`] = new ort.Tensor(half ? 'float16' : 'float32',
        half ? new Uint16Array(0) : new Float32Array(0), [1, a.kvHeads, 0, a.headDim]);
    }
    const t1 = performance.now();
    const r = await session.run(feeds);
    const stepSeconds = (performance.now() - t1) / 1000;
    const want = [1, a.kvHeads, S, a.headDim].join();
    for (let i = 0; i < a.numLayers; i++) {
      for (const kv of ['key', 'value']) {
        const t = r[`present.${i}.${kv}`];
        if (!t || t.dims.join() !== want) throw new Error(`${dir} ${f}: present.${i}.${kv} has dims [${t?.dims}], expected [${want}]`);
      }
    }
    if (r.logits.dims.join() !== [1, S, a.vocabSize].join()) throw new Error(`${dir} ${f}: logits dims [${r.logits.dims}]`);
    const finite = half ? (r.logits.data as Uint16Array).every((b) => (b & 0x7c00) !== 0x7c00)
      : (r.logits.data as Float32Array).every(Number.isFinite);
    if (!finite) throw new Error(`${dir} ${f}: non-finite logits`);
    await session.release();
    out.push({ model: m.standsInFor, flavour: f, loadSeconds, stepSeconds, rssAfterLoadBytes });
    log(`  verify ${m.standsInFor} ${f}: load ${loadSeconds.toFixed(1)} s, ${S}-token prefill ${stepSeconds.toFixed(2)} s, RSS ${(rssAfterLoadBytes / 1e9).toFixed(2)} GB`);
  }
  return out;
}
