/**
 * Reads a `torch.save(state_dict)` file (PyTorch zip format: `<prefix>/data.pkl` + `<prefix>/data/<key>`
 * storages) into Float32 tensors, without executing anything: the pickle goes through the restricted
 * unpickler, tensors must be contiguous views inside their storage, and bf16/f16 are widened to f32.
 * Memory is bounded by the archive: each storage is widened once (a new array, so the archive's bytes can be
 * dropped after this call) and every tensor is a view of its storage, however many keys share it.
 */
import { CheckpointFormatError } from '../errors';
import { PickleDict, TensorRef, describe, unpickle, type StorageDType, type UnpicklerLimits } from './unpickler';
import { readZip, type ZipLimits } from './zip';
import { float16BitsToFloat32 } from '../util/half';

export interface LoadedTensor {
  name: string;
  /** dtype as stored in the checkpoint (the data is always widened to f32). */
  dtype: StorageDType;
  shape: number[];
  /** A view of the widened storage (tensors sharing a storage share its memory, as in torch). */
  data: Float32Array;
}

export interface TorchReadOptions {
  zip?: Partial<ZipLimits>;
  pickle?: Partial<UnpicklerLimits>;
}

const ELEMENT_BYTES: Record<StorageDType, number> = { bfloat16: 2, float16: 2, float32: 4 };

/** Parses one torch zip checkpoint whose top-level object is a (Ordered)dict of tensors. */
export function readTorchStateDict(bytes: Uint8Array, fileName: string, opts: TorchReadOptions = {}): Map<string, LoadedTensor> {
  const entries = readZip(bytes, fileName, opts.zip);
  const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) {
    throw new CheckpointFormatError(`${fileName}: expected one '<archive>/data.pkl' in the zip, found ${pkls.length} (is this a torch.save file?)`, { field: fileName });
  }
  const prefix = pkls[0].slice(0, -'data.pkl'.length);
  const byteorder = entries.get(`${prefix}byteorder`);
  if (byteorder && new TextDecoder().decode(byteorder).trim() !== 'little') {
    throw new CheckpointFormatError(`${fileName}: big-endian checkpoints are not supported`, { field: `${fileName}:byteorder` });
  }

  const root = unpickle(entries.get(pkls[0])!, `${fileName}:${pkls[0]}`, opts.pickle);
  if (!(root instanceof PickleDict)) {
    throw new CheckpointFormatError(`${fileName}: top-level object is ${describe(root)}, expected a state dict`, { field: fileName });
  }

  const storages = new Map<string, Float32Array>();
  const out = new Map<string, LoadedTensor>();
  for (const [name, value] of root.entries) {
    if (typeof name !== 'string') throw new CheckpointFormatError(`${fileName}: state-dict key ${name} is not a string`,
      { field: fileName });
    if (!(value instanceof TensorRef)) {
      throw new CheckpointFormatError(`${fileName}: '${name}' is ${describe(value)}, not a tensor`, { field: fileName, tensor: name });
    }
    const st = value.storage;
    let storage = storages.get(st.key);
    if (!storage) {
      const raw = entries.get(`${prefix}data/${st.key}`);
      if (!raw) throw new CheckpointFormatError(`${fileName}: storage '${st.key}' of '${name}' is missing from the zip`,
        { field: fileName, tensor: name });
      const expectBytes = st.numel * ELEMENT_BYTES[st.dtype];
      if (raw.length !== expectBytes) {
        throw new CheckpointFormatError(
          `${fileName}: storage '${st.key}' of '${name}' declares ${st.numel} ${st.dtype} elements (${expectBytes} bytes) but holds ${raw.length} bytes`,
          { field: fileName, tensor: name, expected: expectBytes, actual: raw.length },
        );
      }
      storage = widen(raw, st.dtype);
      storages.set(st.key, storage);
    }
    out.set(name, { name, dtype: st.dtype, shape: value.shape, data: view(value, storage, fileName, name) });
  }
  return out;
}

/** The tensor's elements: a contiguous window [offset, offset + numel) of its storage, as a view (no copy). */
function view(t: TensorRef, storage: Float32Array, fileName: string, name: string): Float32Array {
  const bad = (msg: string): never => {
    throw new CheckpointFormatError(`${fileName}: tensor '${name}' ${msg}`,
      { field: fileName, tensor: name, shape: t.shape, stride: t.stride });
  };
  let numel = 1;
  for (const d of t.shape) {
    numel *= d;
    if (numel > storage.length) bad(`has shape [${t.shape.join(', ')}], more elements than its storage holds (${storage.length})`);
  }
  if (numel === 0) return new Float32Array(0);
  let expect = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    // torch ignores the stride of a size-1 dim when deciding contiguity; so do we.
    if (t.shape[i] !== 1
      && t.stride[i] !== expect) bad(`is not contiguous (shape [${t.shape.join(', ')}], stride [${t.stride.join(', ')}])`);
    expect *= t.shape[i];
  }
  if (t.offset + numel > storage.length) bad(`reads past its storage (offset ${t.offset} + ${numel} > ${storage.length})`);
  return t.offset === 0 && numel === storage.length ? storage : storage.subarray(t.offset, t.offset + numel);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** bf16 / f16 / f32 little-endian bytes → a new Float32Array (never a view of `raw`). */
export function widen(raw: Uint8Array, dtype: StorageDType): Float32Array {
  const n = raw.length / ELEMENT_BYTES[dtype];
  if (dtype === 'float32') {
    if (LITTLE_ENDIAN && raw.byteOffset % 4 === 0) return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Float32Array.from({ length: n }, (_, i) => dv.getFloat32(4 * i, true));
  }
  const src = LITTLE_ENDIAN && raw.byteOffset % 2 === 0
    ? new Uint16Array(raw.buffer, raw.byteOffset, n)
    : Uint16Array.from({ length: n }, (_, i) => raw[2 * i] | (raw[2 * i + 1] << 8));
  const out = new Float32Array(n);
  if (dtype === 'bfloat16') {
    // bf16 is the top half of an f32: exact widening.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = float16BitsToFloat32(src[i]);
  }
  return out;
}
