/**
 * Writes an ONNX model to disk streaming, one weight at a time (a 5 GB fp32 Llama never sits in memory):
 * weights inline as raw_data while their total is under `externalDataThreshold`, otherwise in ONNX external
 * data files next to the model, named as onnx-community does (`model.onnx_data`, `model.onnx_data_1`, …),
 * each at most `chunkBytes` (a tensor is never split), offsets 64-byte aligned (4096 for tensors ≥ 1 MiB).
 * Tensors under 1 KiB stay inline either way (onnx's default size_threshold). Files appear under their
 * final names only once complete (written as `.partial`, then renamed).
 */
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { modelWriter, type ExternalInitializerSpec, type InitializerSpec, type ModelOptions,
  type ProtoWriter } from '../fuser/onnx/protobuf';
import type { DecoderGraph } from './decoder-graph';
import type { TensorSource } from './onnx-builder';

/** 2 GB: protobuf cannot hold a message of 2 GiB or more, so larger weights must go to external data. */
export const DEFAULT_EXTERNAL_DATA_THRESHOLD = 2_000_000_000;
export const DEFAULT_CHUNK_BYTES = 2_000_000_000;
const INLINE_BELOW = 1024;

export interface WriteOnnxOptions {
  /** Total weight bytes from which weights go to external data (default 2 GB; 0 = always). */
  externalDataThreshold?: number;
  chunkBytes?: number;
  model?: ModelOptions;
}

export interface WrittenOnnx {
  /** Bytes of the .onnx file and of each external data file (names relative to the model's folder). */
  files: { name: string; bytes: number }[];
  /** Number of external data files (what `use_external_data_format` must say for this file). */
  externalDataFiles: number;
  weightBytes: number;
}

export function externalDataFileName(modelFile: string, chunk: number): string {
  return `${modelFile}_data${chunk === 0 ? '' : `_${chunk}`}`;
}

export function writeOnnxModel(path: string, g: DecoderGraph, o: WriteOnnxOptions = {}): WrittenOnnx {
  const threshold = o.externalDataThreshold ?? DEFAULT_EXTERNAL_DATA_THRESHOLD;
  const chunkBytes = o.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const weightBytes = g.weights.reduce((n, w) => n + w.byteLength, 0);
  const files: { name: string; bytes: number }[] = [];
  let weightInits: InitializerSpec[];
  let externalDataFiles = 0;
  if (weightBytes >= threshold) {
    const ext = writeExternalData(path, g.weights, chunkBytes);
    weightInits = ext.initializers;
    externalDataFiles = ext.files.length;
    files.push(...ext.files);
  } else {
    weightInits = g.weights.map(rawInit);
  }
  const writer = modelWriter({ ...g.graph, initializers: [...g.graph.initializers, ...weightInits] }, o.model);
  files.unshift({ name: basename(path), bytes: writeStream(path, writer) });
  return { files, externalDataFiles, weightBytes };
}

const rawInit = (w: TensorSource): InitializerSpec => ({ name: w.name, dims: w.dims, dataType: w.dataType,
  raw: { length: w.byteLength, produce: w.produce } });

function writeExternalData(modelPath: string, weights: TensorSource[], chunkBytes: number) {
  const modelFile = basename(modelPath);
  const files: { name: string; bytes: number }[] = [];
  const initializers: InitializerSpec[] = [];
  let fd = -1;
  let pos = 0;
  let name = '';
  const close = () => {
    if (fd < 0) return;
    closeSync(fd);
    renameSync(join(dirname(modelPath), `${name}.partial`), join(dirname(modelPath), name));
    files.push({ name, bytes: pos });
    fd = -1;
  };
  const zeros = new Uint8Array(4096);
  for (const w of weights) {
    if (w.byteLength < INLINE_BELOW) {
      initializers.push(rawInit(w));
      continue;
    }
    const align = w.byteLength >= 1 << 20 ? 4096 : 64;
    let start = Math.ceil(pos / align) * align;
    if (fd < 0 || (pos > 0 && start + w.byteLength > chunkBytes)) {
      close();
      name = externalDataFileName(modelFile, files.length);
      fd = openSync(join(dirname(modelPath), `${name}.partial`), 'w');
      pos = 0;
      start = 0;
    }
    if (start > pos) writeAll(fd, zeros.subarray(0, start - pos));
    const bytes = w.produce();
    if (bytes.length !== w.byteLength) throw new RangeError(`weight ${w.name} produced ${bytes.length} bytes, declared ${w.byteLength}`);
    writeAll(fd, bytes);
    pos = start + bytes.length;
    const init: ExternalInitializerSpec = { name: w.name, dims: w.dims, dataType: w.dataType,
      external: { location: name, offset: start, length: w.byteLength } };
    initializers.push(init);
  }
  close();
  return { files, initializers };
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** Streams a protobuf writer's pieces into `path` (via `<path>.partial`); returns the bytes written. */
export function writeStream(path: string, w: ProtoWriter): number {
  const tmp = `${path}.partial`;
  const fd = openSync(tmp, 'w');
  let n = 0;
  try {
    for (const piece of w.pieces()) {
      writeAll(fd, piece);
      n += piece.length;
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return n;
}
