/**
 * Restricted unpickler for PyTorch state-dict pickles (`data.pkl` inside a `torch.save` zip).
 *
 * Safety model: it is a data parser, not a pickle VM. It knows only the opcodes `torch.save` emits for a
 * state dict (protocol 2, plus the few protocol-4 framing opcodes) and a fixed whitelist of globals. A
 * GLOBAL resolves to an inert `PickleGlobal` descriptor; REDUCE never calls anything, it pattern-matches
 * the three whitelisted constructors (`OrderedDict()`, `_rebuild_tensor_v2(...)`, `_rebuild_parameter(...)`)
 * and builds plain descriptors. Every other opcode or global is a `CheckpointFormatError` naming it. All
 * loops are bounded by the input length and by explicit limits (stack, marks, memo, objects, nesting), and
 * nothing here recurses, so hostile nesting or memo cycles cannot exhaust the JS stack.
 */
import { CheckpointFormatError } from '../errors';
import { PickleDict, PickleGlobal, PickleTuple, WHITELIST, describe, persistentLoad, reduce, type PickleValue } from './pickle-values';

export * from './pickle-values';

export interface UnpicklerLimits {
  /** Largest pickle accepted, bytes. */
  maxBytes: number;
  /** Values on the stack at once. */
  maxStack: number;
  /** Open MARKs at once. */
  maxMarks: number;
  /** Memo entries. */
  maxMemo: number;
  /** Objects created (containers, strings, descriptors). */
  maxObjects: number;
  /** Container nesting depth. */
  maxDepth: number;
  /** Longest string, bytes. */
  maxStringBytes: number;
}

/** Generous for any real state dict (a 0.6B-pair projector pickle is ~10 KB with ~40 tensors). */
export const DEFAULT_UNPICKLER_LIMITS: UnpicklerLimits = {
  maxBytes: 64 * 1024 * 1024,
  maxStack: 100_000,
  maxMarks: 256,
  maxMemo: 1_000_000,
  maxObjects: 2_000_000,
  maxDepth: 64,
  maxStringBytes: 1024 * 1024,
};

const OPCODE_NAMES: Record<number, string> = {
  0x80: 'PROTO', 0x95: 'FRAME', 0x7d: 'EMPTY_DICT', 0x5d: 'EMPTY_LIST', 0x29: 'EMPTY_TUPLE', 0x28: 'MARK',
  0x74: 'TUPLE', 0x85: 'TUPLE1', 0x86: 'TUPLE2', 0x87: 'TUPLE3', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT',
  0x94: 'MEMOIZE', 0x68: 'BINGET', 0x6a: 'LONG_BINGET', 0x58: 'BINUNICODE', 0x8c: 'SHORT_BINUNICODE',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4d: 'BININT2', 0x8a: 'LONG1', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE',
  0x4e: 'NONE', 0x73: 'SETITEM', 0x75: 'SETITEMS', 0x61: 'APPEND', 0x65: 'APPENDS', 0x63: 'GLOBAL',
  0x93: 'STACK_GLOBAL', 0x52: 'REDUCE', 0x51: 'BINPERSID', 0x47: 'BINFLOAT', 0x62: 'BUILD', 0x2e: 'STOP',
};

// Pickle opcodes we deliberately do not implement, named in errors so a refusal is easy to diagnose.
const KNOWN_UNSUPPORTED: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x50: 'PERSID', 0x82: 'EXT1', 0x83: 'EXT2',
  0x84: 'EXT4', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4c: 'LONG',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x67: 'GET', 0x70: 'PUT',
  0x64: 'DICT', 0x6c: 'LIST', 0x8b: 'LONG4', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

const MARK = Symbol('mark');
type Slot = PickleValue | typeof MARK;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses a state-dict pickle into inert values. `where` names the file in errors. */
export function unpickle(bytes: Uint8Array, where = 'data.pkl', limits: Partial<UnpicklerLimits> = {}): PickleValue {
  const lim = { ...DEFAULT_UNPICKLER_LIMITS, ...limits };
  const fail = (msg: string, pos: number, extra: Record<string, unknown> = {}): never => {
    throw new CheckpointFormatError(`${where}: ${msg} (at byte ${pos})`, { field: where, position: pos, ...extra });
  };
  if (bytes.length > lim.maxBytes) fail(`pickle is ${bytes.length} bytes, over the ${lim.maxBytes}-byte limit`, 0);

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Slot[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  // Nesting depth of each container, updated on insert (containers only grow, so this is an upper-bound guard).
  const depth = new WeakMap<object, number>();
  let objects = 0;
  let pos = 0;
  let op = 0;
  let opPos = 0;

  const need = (n: number): void => {
    if (pos + n > bytes.length) fail(`truncated ${OPCODE_NAMES[op]} operand`, opPos);
  };
  const u8 = (): number => (need(1), bytes[pos++]);
  const u16 = (): number => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = (): number => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const created = <T extends PickleValue>(v: T): T => {
    if (++objects > lim.maxObjects) fail(`more than ${lim.maxObjects} objects`, opPos);
    return v;
  };
  const push = (v: PickleValue): void => {
    if (stack.length >= lim.maxStack) fail(`stack deeper than ${lim.maxStack}`, opPos);
    stack.push(v);
  };
  const pop = (): PickleValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[
      marks.length - 1])) fail(`${OPCODE_NAMES[op]} on an empty stack`, opPos);
    return stack.pop() as PickleValue;
  };
  const top = (): PickleValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[
      marks.length - 1])) fail(`${OPCODE_NAMES[op]} on an empty stack`, opPos);
    return stack[stack.length - 1] as PickleValue;
  };
  const popMark = (): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) fail(`${OPCODE_NAMES[op]} without a MARK`, opPos);
    return stack.splice(m as number) as PickleValue[];
  };
  const depthOf = (v: PickleValue): number => (typeof v === 'object' && v !== null ? (depth.get(v) ?? 1) : 0);
  const nest = (parent: object, children: PickleValue[]): void => {
    let d = depth.get(parent) ?? 1;
    for (const c of children) d = Math.max(d, depthOf(c) + 1);
    if (d > lim.maxDepth) fail(`containers nested deeper than ${lim.maxDepth}`, opPos);
    depth.set(parent, d);
  };
  const memoPut = (idx: number): void => {
    if (!memo.has(idx) && memo.size >= lim.maxMemo) fail(`memo larger than ${lim.maxMemo}`, opPos);
    memo.set(idx, top());
  };
  const memoGet = (idx: number): void => {
    const v = memo.get(idx);
    if (v === undefined) fail(`memo entry ${idx} is not defined`, opPos);
    push(v as PickleValue);
  };
  const str = (n: number): string => {
    if (n > lim.maxStringBytes) fail(`string of ${n} bytes over the ${lim.maxStringBytes}-byte limit`, opPos);
    need(n);
    let s: string;
    try {
      s = utf8.decode(bytes.subarray(pos, pos + n));
    } catch {
      return fail('string is not valid UTF-8', opPos);
    }
    pos += n;
    return created(s);
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 256) fail('GLOBAL operand is not a short newline-terminated line', opPos);
    const s = String.fromCharCode(...bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const global = (module: string, name: string): PickleGlobal => {
    const g = new PickleGlobal(module, name);
    if (!WHITELIST.has(g.qualified)) fail(`global '${module} ${name}' is not allowed (only torch state-dict globals are)`, opPos,
      { global: g.qualified });
    return created(g);
  };
  const setItems = (dict: PickleValue, items: PickleValue[]): void => {
    if (!(dict instanceof PickleDict)) return fail(`${OPCODE_NAMES[op]} on a non-dict`, opPos);
    if (items.length % 2 !== 0) fail(`${OPCODE_NAMES[op]} with an odd number of items`, opPos);
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i];
      if (typeof k !== 'string' && typeof k !== 'number') fail(`dict key of unsupported type ${describe(k)}`, opPos);
      dict.entries.set(k as string | number, items[i + 1]);
    }
    nest(dict, items);
  };

  for (;;) {
    if (pos >= bytes.length) fail('pickle ended without STOP', pos);
    opPos = pos;
    op = bytes[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v < 2 || v > 5) fail(`unsupported pickle protocol ${v}`, opPos);
        break;
      }
      case 0x95: // FRAME: an 8-byte length hint; frames are just a framing of the same opcode stream.
        need(8);
        pos += 8;
        break;
      case 0x7d: push(created(new PickleDict(false))); break; // EMPTY_DICT
      case 0x5d: push(created([])); break; // EMPTY_LIST
      case 0x29: push(created(new PickleTuple([]))); break; // EMPTY_TUPLE
      case 0x28: // MARK
        if (marks.length >= lim.maxMarks) fail(`more than ${lim.maxMarks} nested MARKs`, opPos);
        marks.push(stack.length);
        break;
      case 0x74: { // TUPLE
        const t = created(new PickleTuple(popMark()));
        nest(t, t.items);
        push(t);
        break;
      }
      case 0x85: case 0x86: case 0x87: { // TUPLE1..3
        const n = op - 0x84;
        const items: PickleValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        const t = created(new PickleTuple(items));
        nest(t, items);
        push(t);
        break;
      }
      case 0x71: memoPut(u8()); break; // BINPUT
      case 0x72: memoPut(u32()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size); break; // MEMOIZE
      case 0x68: memoGet(u8()); break; // BINGET
      case 0x6a: memoGet(u32()); break; // LONG_BINGET
      case 0x58: push(str(u32())); break; // BINUNICODE
      case 0x8c: push(str(u8())); break; // SHORT_BINUNICODE
      case 0x4a: need(4); push(view.getInt32(pos, true)); pos += 4; break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: { // LONG1: little-endian two's complement, at most 8 bytes here
        const n = u8();
        if (n > 8) fail(`LONG1 of ${n} bytes (integers over 64 bits are not supported)`, opPos);
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i]);
        if (n > 0 && bytes[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        pos += n;
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(
          Number.MIN_SAFE_INTEGER)) fail(`integer ${v} is out of the safe range`, opPos);
        push(Number(v));
        break;
      }
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4e: push(null); break; // NONE
      case 0x47: need(8); push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) fail('APPEND to a non-list', opPos);
        (list as PickleValue[]).push(v);
        nest(list as PickleValue[], [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) fail('APPENDS to a non-list', opPos);
        for (const v of items) (list as PickleValue[]).push(v);
        nest(list as PickleValue[], items);
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL operands are not strings', opPos);
        push(global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        push(reduce(fn, args, (m) => fail(m, opPos), created));
        break;
      }
      case 0x51: push(persistentLoad(pop(), (m) => fail(m, opPos), created)); break; // BINPERSID
      case 0x62: { // BUILD: only an OrderedDict's attribute dict (state_dict's `_metadata`) is accepted, and kept inert.
        const state = pop();
        const obj = top();
        if (!(obj instanceof PickleDict) || !(state instanceof PickleDict) || obj.state !== undefined) {
          fail(`BUILD on ${describe(obj)} with ${describe(state)} is not a state-dict attribute update`, opPos);
        }
        (obj as PickleDict).state = state;
        nest(obj as PickleDict, [state]);
        break;
      }
      case 0x2e: { // STOP
        if (marks.length > 0) fail('STOP with an open MARK', opPos);
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack (expected 1)`, opPos);
        return stack[0] as PickleValue;
      }
      default: {
        const name = KNOWN_UNSUPPORTED[op];
        const hex = `0x${op.toString(16).padStart(2, '0')}`;
        fail(name ? `opcode ${name} (${hex}) is not allowed in a state-dict pickle` : `unknown opcode ${hex}`, opPos,
          { opcode: name ?? hex });
      }
    }
  }
}

