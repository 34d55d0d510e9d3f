/**
 * A minimal pickle writer (protocol 2) for the values a `torch.save(state_dict)` file holds, memoizing the
 * way CPython's Pickler does (every string, global, tuple of one or more items, dict and REDUCE result gets a
 * BINPUT; a repeat is a BINGET), so the stream has the shape of a real one. Hand-written: no npm package
 * writes pickles, and the subset is small. Opcodes from CPython's Lib/pickle.py.
 */

export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
}
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}
/** dict, or collections.OrderedDict (pickled as REDUCE of the OrderedDict global) with an optional BUILD state. */
export class PyDict {
  constructor(readonly entries: [string, PyValue][], readonly ordered = false, readonly state?: PyDict) {}
}
export class PyReduce {
  constructor(readonly fn: PyGlobal, readonly args: PyTuple) {}
}
/** A persistent id (torch: the storage tuple), written as the tuple then BINPERSID. */
export class PyPersistentId {
  constructor(readonly id: PyTuple) {}
}

export type PyValue = null | boolean | number | string | PyGlobal | PyTuple | PyDict | PyReduce | PyPersistentId;

const OP = {
  PROTO: 0x80, STOP: 0x2e, MARK: 0x28, NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89, BININT1: 0x4b, BININT2: 0x4d, BININT: 0x4a,
  LONG1: 0x8a, BINUNICODE: 0x58, GLOBAL: 0x63, EMPTY_TUPLE: 0x29, TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  EMPTY_DICT: 0x7d, SETITEM: 0x73, SETITEMS: 0x75, REDUCE: 0x52, BUILD: 0x62, BINPERSID: 0x51, BINPUT: 0x71, LONG_BINPUT: 0x72,
  BINGET: 0x68, LONG_BINGET: 0x6a,
} as const;

/** CPython's _BATCHSIZE for SETITEMS. */
const BATCH = 1000;
const ORDERED_DICT = new PyGlobal('collections', 'OrderedDict');

class Writer {
  private buf = new Uint8Array(1 << 12);
  length = 0;
  private readonly memo = new Map<unknown, number>();

  private grow(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): void {
    this.grow(1);
    this.buf[this.length++] = b;
  }

  bytes(b: Uint8Array): void {
    this.grow(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  uint(v: number, size: 2 | 4): void {
    for (let i = 0; i < size; i++) this.byte((v >>> (8 * i)) & 0xff);
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }

  /** Key under which an object is memoized: strings by value, globals by name, other objects by identity. */
  private key(v: PyValue): unknown {
    if (typeof v === 'string') return `s:${v}`;
    if (v instanceof PyGlobal) return `g:${v.module}.${v.name}`;
    return v;
  }

  /** BINGET when memoized already; returns whether it was. */
  get(v: PyValue): boolean {
    const i = this.memo.get(this.key(v));
    if (i === undefined) return false;
    if (i < 256) {
      this.byte(OP.BINGET);
      this.byte(i);
    } else {
      this.byte(OP.LONG_BINGET);
      this.uint(i, 4);
    }
    return true;
  }

  put(v: PyValue): void {
    const i = this.memo.size;
    this.memo.set(this.key(v), i);
    if (i < 256) {
      this.byte(OP.BINPUT);
      this.byte(i);
    } else {
      this.byte(OP.LONG_BINPUT);
      this.uint(i, 4);
    }
  }
}

function saveInt(w: Writer, v: number): void {
  if (!Number.isSafeInteger(v)) throw new RangeError(`pickle: ${v} is not an integer`);
  if (v >= 0 && v < 256) {
    w.byte(OP.BININT1);
    w.byte(v);
  } else if (v >= 0 && v < 65536) {
    w.byte(OP.BININT2);
    w.uint(v, 2);
  } else if (v >= -(2 ** 31) && v < 2 ** 31) {
    w.byte(OP.BININT);
    w.uint(v >>> 0, 4);
  } else {
    // LONG1: little-endian two's complement, shortest form.
    const bytes: number[] = [];
    let x = BigInt(v);
    do {
      bytes.push(Number(BigInt.asUintN(8, x)));
      x >>= 8n;
    } while (!((x === 0n && (bytes[bytes.length - 1] & 0x80) === 0) || (x === -1n && (bytes[bytes.length - 1] & 0x80) !== 0)));
    w.byte(OP.LONG1);
    w.byte(bytes.length);
    w.bytes(Uint8Array.from(bytes));
  }
}

function saveItems(w: Writer, entries: [string, PyValue][]): void {
  for (let i = 0; i < entries.length; i += BATCH) {
    const batch = entries.slice(i, i + BATCH);
    if (batch.length === 1) {
      save(w, batch[0][0]);
      save(w, batch[0][1]);
      w.byte(OP.SETITEM);
      continue;
    }
    w.byte(OP.MARK);
    for (const [k, v] of batch) {
      save(w, k);
      save(w, v);
    }
    w.byte(OP.SETITEMS);
  }
}

function save(w: Writer, v: PyValue): void {
  if (v === null) return w.byte(OP.NONE);
  if (v === true || v === false) return w.byte(v ? OP.NEWTRUE : OP.NEWFALSE);
  if (typeof v === 'number') return saveInt(w, v);
  if (v instanceof PyTuple && v.items.length === 0) return w.byte(OP.EMPTY_TUPLE);
  if (w.get(v)) return;
  if (typeof v === 'string') {
    const b = new TextEncoder().encode(v);
    w.byte(OP.BINUNICODE);
    w.uint(b.length, 4);
    w.bytes(b);
  } else if (v instanceof PyGlobal) {
    w.bytes(new TextEncoder().encode(`c${v.module}\n${v.name}\n`));
  } else if (v instanceof PyTuple) {
    const n = v.items.length;
    if (n > 3) w.byte(OP.MARK);
    for (const item of v.items) save(w, item);
    w.byte(n === 1 ? OP.TUPLE1 : n === 2 ? OP.TUPLE2 : n === 3 ? OP.TUPLE3 : OP.TUPLE);
  } else if (v instanceof PyReduce) {
    save(w, v.fn);
    save(w, v.args);
    w.byte(OP.REDUCE);
  } else if (v instanceof PyPersistentId) {
    save(w, v.id);
    w.byte(OP.BINPERSID);
    return; // the loaded object is not memoized by the pickler
  } else if (v.ordered) {
    save(w, ORDERED_DICT);
    w.byte(OP.EMPTY_TUPLE);
    w.byte(OP.REDUCE);
    w.put(v);
    saveItems(w, v.entries);
    if (v.state) {
      save(w, v.state);
      w.byte(OP.BUILD);
    }
    return;
  } else {
    w.byte(OP.EMPTY_DICT);
    w.put(v);
    saveItems(w, v.entries);
    return;
  }
  w.put(v);
}

/** The pickle (protocol 2) of `root`. */
export function pickle(root: PyValue): Uint8Array {
  const w = new Writer();
  w.byte(OP.PROTO);
  w.byte(2);
  save(w, root);
  w.byte(OP.STOP);
  return w.result();
}
