/**
 * What `torch.save(module.state_dict(), "<archive>.pt")` writes for a dict of bfloat16 tensors: a zip
 * (zip-store.ts) holding `<archive>/data.pkl` (pickle protocol 2: an OrderedDict of
 * `torch._utils._rebuild_tensor_v2((storage pid), offset, size, stride, requires_grad, OrderedDict())`, the
 * pid `('storage', torch.BFloat16Storage, key, 'cpu', numel)`, and the state dict's `_metadata` as BUILD
 * state), `<archive>/byteorder` ("little"), one `<archive>/data/<key>` per storage (keys in string order,
 * as torch writes them), and `<archive>/version` ("3\n").
 */
import { float32ToBFloat16Bits } from '../util/half';
import { PyDict, PyGlobal, PyPersistentId, PyReduce, PyTuple, type PyValue } from './pickle';
import { pickle } from './pickle';
import { zipStored, type ZipEntry } from './zip-store';

export interface StateDictTensor {
  name: string;
  shape: number[];
  /** float32 values, stored as bfloat16 (round to nearest even, like `.bfloat16()`). */
  values: Float32Array;
}

const REBUILD = new PyGlobal('torch._utils', '_rebuild_tensor_v2');
const BF16_STORAGE = new PyGlobal('torch', 'BFloat16Storage');
const ORDERED_DICT = new PyGlobal('collections', 'OrderedDict');

export function toBFloat16Bytes(values: Float32Array): Uint8Array {
  const h = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) h[i] = float32ToBFloat16Bits(values[i]);
  return new Uint8Array(h.buffer);
}

export function contiguousStride(shape: number[]): number[] {
  const stride = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i];
  }
  return stride;
}

/**
 * The .pt bytes. `modules` lists the state dict's `_metadata` entries (every submodule path, '' first),
 * each `{'version': 1}` as nn.Module writes them.
 */
export function torchSaveStateDict(archive: string, tensors: StateDictTensor[], modules: string[]): Uint8Array {
  const entries: [string, PyValue][] = tensors.map((t, key) => {
    const numel = t.shape.reduce((n, d) => n * d, 1);
    if (numel !== t.values.length) throw new RangeError(`${t.name}: ${t.values.length} values for shape [${t.shape}]`);
    const pid = new PyPersistentId(new PyTuple(['storage', BF16_STORAGE, String(key), 'cpu', numel]));
    const args = new PyTuple([pid, 0, new PyTuple(t.shape), new PyTuple(contiguousStride(t.shape)), false,
      new PyReduce(ORDERED_DICT, new PyTuple([]))]);
    return [t.name, new PyReduce(REBUILD, args)];
  });
  const metadata = new PyDict(modules.map((m) => [m, new PyDict([['version', 1]])]), true);
  const root = new PyDict(entries, true, new PyDict([['_metadata', metadata]]));
  const files: ZipEntry[] = [
    { name: `${archive}/data.pkl`, data: pickle(root) },
    { name: `${archive}/byteorder`, data: new TextEncoder().encode('little') },
  ];
  const keys = tensors.map((_, i) => String(i)).sort();
  for (const k of keys) files.push({ name: `${archive}/data/${k}`, data: toBFloat16Bytes(tensors[Number(k)].values) });
  files.push({ name: `${archive}/version`, data: new TextEncoder().encode('3\n') });
  return zipStored(files);
}
