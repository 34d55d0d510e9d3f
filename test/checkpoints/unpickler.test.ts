/**
 * Hostile and garbled torch files: each must fail with CheckpointFormatError, quickly (< 1 s), naming the
 * opcode/global/limit, and nothing in them may run (the os.system payload would create a marker file).
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointFormatError } from '../../src/errors';
import { readTorchStateDict, widen } from '../../src/checkpoints/torch-archive';
import { PickleDict, TensorRef, unpickle } from '../../src/checkpoints/unpickler';
import { readZip } from '../../src/checkpoints/zip';
import { zipSync } from 'fflate';
import { PickleWriter, fixtureFile, stateDictPickle, timedError, torchZip, type TensorSpec } from './helpers';

async function expectRejected(fn: () => unknown, message: RegExp): Promise<CheckpointFormatError> {
  const { error, ms } = await timedError(fn);
  expect(error).toBeInstanceOf(CheckpointFormatError);
  expect((error as Error).message).toMatch(message);
  expect(ms).toBeLessThan(1000);
  return error as CheckpointFormatError;
}

const read = (bytes: Uint8Array) => () => readTorchStateDict(bytes, 'evil.pt');
const pkl = (...bytes: number[]) => new Uint8Array(bytes);
const small: TensorSpec = { name: 'w', data: Float32Array.from([1, -2, 0.5, 3]), shape: [2, 2] };

describe('malicious pickles from Python (test/fixtures/official/malicious)', () => {
  it('refuses GLOBAL posix system (os.system) and runs nothing', async () => {
    const marker = join(process.cwd(), 'c2c_pwned_marker');
    await expectRejected(read(fixtureFile('malicious', 'os_system.pt')), /global 'posix system' is not allowed/);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses builtins eval', async () => {
    await expectRejected(read(fixtureFile('malicious', 'builtins_eval.pt')), /global '(__builtin__|builtins) eval' is not allowed/);
  });

  it('refuses an unknown callable inside an otherwise valid state dict', async () => {
    await expectRejected(read(fixtureFile('malicious', 'unknown_callable.pt')), /torch\._utils _rebuild_xxxxxx_v2/);
    // The same file with the real callable loads (control).
    const ok = readTorchStateDict(fixtureFile('malicious', 'valid_small.pt'), 'valid_small.pt');
    expect(ok.get('key_in.bias')?.shape).toEqual([2]);
  });
});

describe('hand-built hostile pickles', () => {
  it.each([
    ['REDUCE of a whitelisted global that is not a constructor',
      new PickleWriter().op(0x80, 2).global('torch', 'FloatStorage').op(0x29, 0x52, 0x2e), /REDUCE of torch\.FloatStorage is not allowed/],
    ['STACK_GLOBAL of subprocess', new PickleWriter().op(0x80, 4).str('subprocess').str('Popen').op(0x93, 0x2e),
      /global 'subprocess Popen'/],
    ['OBJ opcode', new PickleWriter().op(0x80, 2, 0x28).op(0x6f, 0x2e), /opcode OBJ \(0x6f\) is not allowed/],
    ['INST opcode', new PickleWriter().op(0x80, 2, 0x28).op(0x69).op(...new TextEncoder().encode('os\nsystem\n')), /opcode INST/],
    ['NEWOBJ opcode', new PickleWriter().op(0x80, 2).op(0x29, 0x29, 0x81, 0x2e), /opcode NEWOBJ/],
    ['an unknown opcode', new PickleWriter().op(0x80, 2, 0xff, 0x2e), /unknown opcode 0xff/],
    ['protocol 0 text pickle', new PickleWriter().op(0x80, 0, 0x2e), /unsupported pickle protocol 0/],
    ['BUILD on a tensor-less object', new PickleWriter().op(0x80, 2, 0x5d, 0x7d, 0x62, 0x2e), /BUILD on a list of 0/],
    ['a persistent id that is not a storage', new PickleWriter().op(0x80, 2).str('shm').op(0x85, 0x51, 0x2e), /BINPERSID of a tuple of 1/],
    ['a storage of an unsupported dtype', new PickleWriter().op(0x80, 2, 0x28).str('storage').global('torch', 'LongStorage'),
      /global 'torch LongStorage' is not allowed/],
    ['no STOP', new PickleWriter().op(0x80, 2, 0x7d), /ended without STOP/],
    ['a string longer than the file', new PickleWriter().op(0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f), /string of 2147483647 bytes over/],
    ['a truncated BININT', new PickleWriter().op(0x80, 2, 0x4a, 1), /truncated BININT operand/],
    ['an undefined memo entry', new PickleWriter().op(0x80, 2, 0x68, 7, 0x2e), /memo entry 7 is not defined/],
    ['invalid UTF-8', new PickleWriter().op(0x80, 2, 0x8c, 2, 0xc3, 0x28, 0x2e), /not valid UTF-8/],
  ] as const)('%s', async (_label, w, message) => {
    await expectRejected(() => unpickle(w.bytes()), message);
  });

  it('bounds 10^5 nested MARKs', async () => {
    const bytes = new Uint8Array(100_002).fill(0x28);
    bytes.set([0x80, 2]);
    await expectRejected(() => unpickle(bytes), /more than 256 nested MARKs/);
  });

  it('bounds 10^5 nested lists (built inside out)', async () => {
    const n = 100_000;
    const bytes = new Uint8Array(2 + 2 * n + 1);
    bytes.set([0x80, 2]);
    bytes.fill(0x5d, 2, 2 + n); // n empty lists on the stack
    bytes.fill(0x61, 2 + n, 2 + 2 * n - 1); // append each into the one below
    bytes[bytes.length - 2] = 0x2e;
    await expectRejected(() => unpickle(bytes), /containers nested deeper than 64/);
    await expectRejected(() => unpickle(bytes, 'x', { maxStack: 1000 }), /stack deeper than 1000/);
  });

  it('bounds a memo-chained nesting (each list appended to the previous through BINGET)', async () => {
    const w = new PickleWriter().op(0x80, 2, 0x5d, 0x71, 0);
    for (let i = 0; i < 50_000; i++) w.op(0x5d, 0x72, ...[1, 0, 0, 0], 0x61, 0x6a, 1, 0, 0, 0);
    await expectRejected(() => unpickle(w.op(0x2e).bytes()), /STOP with \d+ values on the stack|stack deeper/);
  });

  it('survives a self-referencing list (no recursion anywhere)', async () => {
    const cyclic = pkl(0x80, 2, 0x5d, 0x71, 0, 0x68, 0, 0x61, 0x2e);
    const v = unpickle(cyclic) as unknown[];
    expect(v[0]).toBe(v);
    await expectRejected(read(torchZip(cyclic)), /top-level object is a list of 1/);
  });

  it('bounds the number of objects and memo entries', async () => {
    const w = new PickleWriter().op(0x80, 2, 0x5d, 0x28);
    for (let i = 0; i < 2000; i++) w.op(0x29, 0x72, ...new Uint8Array(new Uint32Array([i]).buffer));
    w.op(0x65, 0x2e);
    expect((unpickle(w.bytes()) as unknown[]).length).toBe(2000);
    await expectRejected(() => unpickle(w.bytes(), 'x', { maxObjects: 500 }), /more than 500 objects/);
    await expectRejected(() => unpickle(w.bytes(), 'x', { maxMemo: 100 }), /memo larger than 100/);
  });
});

describe('garbled archives and absurd sizes', () => {
  const real = () => fixtureFile('tiny_qwen', 'final', 'projector_1.pt');

  it('refuses truncated zips', async () => {
    const b = real();
    await expectRejected(read(b.subarray(0, b.length >> 1)), /not a readable zip archive/);
    await expectRejected(read(b.subarray(0, b.length - 10)), /not a readable zip archive/);
    await expectRejected(read(new Uint8Array(0)), /not a readable zip archive/);
  });

  it('refuses a zip whose entry lies past the end of the file', async () => {
    // Keep the central directory but cut the middle: the stored data of some entries is now missing.
    const b = real();
    const cut = new Uint8Array(b.length - 200);
    const eocd = 22;
    const cdStart = new DataView(b.buffer, b.byteOffset).getUint32(b.length - eocd + 16, true);
    cut.set(b.subarray(0, 400));
    cut.set(b.subarray(600), 400);
    new DataView(cut.buffer).setUint32(cut.length - eocd + 16, cdStart - 200, true);
    const { error, ms } = await timedError(read(cut));
    expect(error).toBeInstanceOf(CheckpointFormatError);
    expect(ms).toBeLessThan(1000);
  });

  it('checks declared entry sizes before inflating', async () => {
    const b = real().slice();
    // Patch the first central-directory record's sizes to claim 3.9 GB.
    const dv = new DataView(b.buffer);
    const cd = dv.getUint32(b.length - 22 + 16, true);
    expect(dv.getUint32(cd, true)).toBe(0x02014b50);
    dv.setUint32(cd + 20, 0xfffffff0, true);
    dv.setUint32(cd + 24, 0xfffffff0, true);
    await expectRejected(read(b), /declares 4294967280 bytes, over the 1073741824-byte limit/);
    await expectRejected(() => readZip(real(), 'p.pt', { maxTotalBytes: 1000 }), /more than 1000 bytes in total/);
    await expectRejected(() => readZip(real(), 'p.pt', { maxEntries: 3 }), /more than 3 entries/);
  });

  it('refuses a storage that declares more elements than its bytes hold', async () => {
    await expectRejected(read(torchZip(stateDictPickle([{ ...small, storageNumel: 1e12 }]), [small])),
      /declares 1000000000000 bfloat16 elements .* but holds 8 bytes/);
  });

  it('refuses a shape whose element count overflows or exceeds the storage', async () => {
    const huge = { ...small, shapeOverride: [2n ** 40n, 2n ** 40n, 2n ** 40n], stride: [0, 0, 0] };
    await expectRejected(read(torchZip(stateDictPickle([huge]), [small])), /more elements than its storage holds/);
    await expectRejected(read(torchZip(stateDictPickle([{ ...small, shapeOverride: [2n ** 62n] }]), [small])), /out of the safe range/);
  });

  it('refuses non-contiguous views and reads past the storage', async () => {
    await expectRejected(read(torchZip(stateDictPickle([{ ...small, stride: [1, 2] }]), [small])),
      /not contiguous \(shape \[2, 2\], stride \[1, 2\]\)/);
    await expectRejected(read(torchZip(stateDictPickle([{ ...small, shape: [3], offset: 2 }]), [small])), /reads past its storage/);
  });

  it('refuses a missing storage record, a non-tensor value, and big-endian archives', async () => {
    await expectRejected(read(torchZip(stateDictPickle([small]))), /storage '0' of 'w' is missing/);
    const notTensor = new PickleWriter().op(0x80, 2, 0x7d).str('w').op(0x4b, 3, 0x73, 0x2e).bytes();
    await expectRejected(read(torchZip(notTensor)), /'w' is 3, not a tensor/);
    await expectRejected(
      read(torchZip(stateDictPickle([small]), [small], { 'archive/byteorder': new TextEncoder().encode('big') })),
      /big-endian/,
    );
  });

  it('refuses a zip without data.pkl or with two', async () => {
    await expectRejected(read(torchZip(stateDictPickle([small]), [small], { 'other/data.pkl': new Uint8Array(1) })), /found 2/);
  });
});

describe('what is accepted', () => {
  it('reads a torch-2.x-style archive (archive/ prefix, byteorder record) with offsets', () => {
    const t = readTorchStateDict(torchZip(stateDictPickle([small, { name: 'tail', data: small.data, shape: [2], offset: 2 }]),
      [small, small]), 'x.pt');
    expect(Array.from(t.get('w')!.data)).toEqual([1, -2, 0.5, 3]);
    expect(Array.from(t.get('tail')!.data)).toEqual([0.5, 3]);
    expect(t.get('w')!.dtype).toBe('bfloat16');
  });

  it('reads deflated entries, and refuses a deflate entry claiming an impossible ratio', async () => {
    const pk = stateDictPickle([small]);
    const deflated = zipSync({ 'a/data.pkl': [pk, { level: 6 }], 'a/data/0': [new Uint8Array(8), { level: 6 }] });
    expect(Array.from(readTorchStateDict(deflated, 'd.pt').get('w')!.data)).toEqual([0, 0, 0, 0]);
    const zeros = zipSync({ 'z/big': [new Uint8Array(4096), { level: 9 }] });
    const dv = new DataView(zeros.buffer);
    const cd = dv.getUint32(zeros.length - 22 + 16, true);
    dv.setUint32(cd + 24, 500_000_000, true); // claims 500 MB from a few compressed bytes
    await expectRejected(() => readZip(zeros, 'z.pt'), /impossible inflate ratio/);
  });

  it('reads a torch >= 2.1 style archive (archive/ prefix, byteorder, 64-byte aligned records) like the original', () => {
    const original = readTorchStateDict(fixtureFile('tiny_qwen', 'final', 'projector_0.pt'), 'a.pt');
    const rewrapped = readTorchStateDict(fixtureFile('variants', 'torch2_style_projector_0.pt'), 'b.pt');
    expect([...rewrapped.keys()]).toEqual([...original.keys()]);
    for (const [k, t] of original) expect(Array.from(rewrapped.get(k)!.data)).toEqual(Array.from(t.data));
  });

  it('parses the real torch 1.13 pickle into inert descriptors', () => {
    const entries = readZip(fixtureFile('tiny_qwen', 'final', 'projector_0.pt'), 'p.pt');
    const root = unpickle(entries.get('projector_0/data.pkl')!) as PickleDict;
    expect(root).toBeInstanceOf(PickleDict);
    expect(root.ordered).toBe(true);
    expect(root.state).toBeInstanceOf(PickleDict); // state_dict._metadata through BUILD, kept inert
    const gate = root.entries.get('key_gate_logit') as TensorRef;
    expect(gate).toBeInstanceOf(TensorRef);
    expect(gate.shape).toEqual([]);
    expect(gate.storage.dtype).toBe('bfloat16');
  });

  it('widens f16 and bf16 exactly', () => {
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00]).buffer);
    expect(Array.from(widen(f16, 'float16'))).toEqual([1, -2, 65504, 2 ** -24, -0, Infinity]);
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc040, 0x0001]).buffer);
    expect(Array.from(widen(bf16, 'bfloat16'))).toEqual([1, -3, 2 ** -133]);
    // Unaligned input takes the byte-wise path and gives the same values.
    const unaligned = new Uint8Array(f16.length + 1);
    unaligned.set(f16, 1);
    expect(Array.from(widen(unaligned.subarray(1), 'float16'))).toEqual([1, -2, 65504, 2 ** -24, -0, Infinity]);
  });
});
