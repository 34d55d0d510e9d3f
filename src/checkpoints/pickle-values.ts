/**
 * The inert values the restricted unpickler produces, and the only torch semantics it knows: the global
 * whitelist, REDUCE of the three whitelisted constructors and torch's storage persistent id, all evaluated
 * symbolically into descriptors (nothing is ever called or imported).
 */

export type StorageDType = 'bfloat16' | 'float16' | 'float32';

/** A global the pickle referenced; never resolved to code. */
export class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

export class PickleTuple {
  constructor(readonly items: PickleValue[]) {}
}

/** dict / OrderedDict; keys are restricted to strings and numbers. `state` holds a BUILD state (torch's `_metadata`). */
export class PickleDict {
  readonly entries = new Map<string | number, PickleValue>();
  state?: PickleValue;
  constructor(readonly ordered: boolean) {}
}

/** `('storage', torch.XStorage, key, location, numel)` from BINPERSID: bytes live in `data/{key}`. */
export class StorageRef {
  constructor(readonly key: string, readonly dtype: StorageDType, readonly location: string, readonly numel: number) {}
}

/** `_rebuild_tensor_v2(storage, offset, size, stride, ...)`, not materialized. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

export type PickleValue =
  | null
  | boolean
  | number
  | string
  | PickleValue[]
  | PickleTuple
  | PickleDict
  | PickleGlobal
  | StorageRef
  | TensorRef;

const STORAGE_GLOBALS: Record<string, StorageDType> = {
  'torch.BFloat16Storage': 'bfloat16',
  'torch.HalfStorage': 'float16',
  'torch.FloatStorage': 'float32',
};
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const REBUILD_PARAMETER = 'torch._utils._rebuild_parameter';
const ORDERED_DICT = 'collections.OrderedDict';
export const WHITELIST = new Set([...Object.keys(STORAGE_GLOBALS), REBUILD_TENSOR, REBUILD_PARAMETER, ORDERED_DICT]);

type Created = <T extends PickleValue>(v: T) => T;

/** REDUCE of a whitelisted constructor, evaluated symbolically. */
export function reduce(fn: PickleValue, args: PickleValue, fail: (m: string) => never, created: Created): PickleValue {
  if (!(fn instanceof PickleGlobal)) return fail(`REDUCE of ${describe(fn)}, not a global`);
  if (!(args instanceof PickleTuple)) return fail(`REDUCE of ${fn.qualified} with ${describe(args)} instead of an argument tuple`);
  const a = args.items;
  switch (fn.qualified) {
    case ORDERED_DICT:
      if (a.length !== 0) fail(`${ORDERED_DICT} called with ${a.length} arguments (expected none)`);
      return created(new PickleDict(true));
    case REBUILD_TENSOR: {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.length !== 6 && a.length !== 7) fail(`${REBUILD_TENSOR} called with ${a.length} arguments (expected 6 or 7)`);
      const [storage, offset, size, stride, requiresGrad, hooks] = a;
      if (!(storage instanceof StorageRef)) fail(`${REBUILD_TENSOR}: storage is ${describe(storage)}`);
      const shape = intTuple(size, 'size', fail);
      const strides = intTuple(stride, 'stride', fail);
      if (shape.length !== strides.length) fail(`${REBUILD_TENSOR}: size has ${shape.length} dims but stride has ${strides.length}`);
      if (!isNonNegInt(offset)) fail(`${REBUILD_TENSOR}: storage offset is ${describe(offset)}`);
      if (typeof requiresGrad !== 'boolean') fail(`${REBUILD_TENSOR}: requires_grad is ${describe(requiresGrad)}`);
      if (!(hooks instanceof PickleDict) || hooks.entries.size > 0) fail(`${REBUILD_TENSOR}: backward hooks must be an empty OrderedDict`);
      if (a.length === 7 && !(a[6] === null || (a[6] instanceof PickleDict && a[6].entries.size === 0))) {
        fail(`${REBUILD_TENSOR}: tensor metadata is not supported`);
      }
      return created(new TensorRef(storage as StorageRef, offset as number, shape, strides));
    }
    case REBUILD_PARAMETER: {
      // (data, requires_grad, backward_hooks): a Parameter is its tensor for our purposes.
      if (a.length !== 3 || !(a[0] instanceof TensorRef)) fail(`${REBUILD_PARAMETER} expects (tensor, requires_grad, hooks)`);
      return a[0];
    }
    default:
      return fail(`REDUCE of ${fn.qualified} is not allowed`);
  }
}

/** torch's persistent id for a storage: ('storage', StorageClass, key, location, numel). */
export function persistentLoad(pid: PickleValue, fail: (m: string) => never, created: Created): PickleValue {
  if (!(pid instanceof PickleTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage') {
    return fail(`BINPERSID of ${describe(pid)}, expected ('storage', StorageClass, key, location, numel)`);
  }
  const [, cls, key, location, numel] = pid.items;
  const dtype = cls instanceof PickleGlobal ? STORAGE_GLOBALS[cls.qualified] : undefined;
  if (!dtype) return fail(`persistent storage of type ${describe(cls)} is not supported (bf16, f16, f32 only)`);
  if (typeof key !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(key)) fail(`storage key ${describe(key)} is not a plain name`);
  if (typeof location !== 'string') fail(`storage location is ${describe(location)}`);
  if (!isNonNegInt(numel)) fail(`storage numel is ${describe(numel)}`);
  return created(new StorageRef(key as string, dtype, location as string, numel as number));
}

function intTuple(v: PickleValue, what: string, fail: (m: string) => never): number[] {
  if (!(v instanceof PickleTuple)) return fail(`tensor ${what} is ${describe(v)}, not a tuple`);
  if (v.items.length > 16) fail(`tensor ${what} has ${v.items.length} dims`);
  for (const x of v.items) if (!isNonNegInt(x)) fail(`tensor ${what} holds ${describe(x)}`);
  return v.items as number[];
}

function isNonNegInt(v: PickleValue): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Short, non-recursive description of a value for error messages. */
export function describe(v: PickleValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  if (typeof v === 'string') return `'${v.length > 40 ? v.slice(0, 40) + '…' : v}'`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof PickleTuple) return `a tuple of ${v.items.length}`;
  if (v instanceof PickleDict) return `a dict of ${v.entries.size}`;
  if (v instanceof PickleGlobal) return `global ${v.qualified}`;
  if (v instanceof StorageRef) return `storage ${v.key}`;
  return 'a tensor';
}
