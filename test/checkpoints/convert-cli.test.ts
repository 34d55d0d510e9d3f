/**
 * `c2c-web convert` end to end, through the real bin entry (bin/c2c-web.mjs → dist-lib/cli.js, run by Node as a
 * user would; the vitest global setup builds dist-lib when stale): official folder → c2c-web fuser folder →
 * loadFuserFromDirectory gives the same weights and config, and the converted fuser reproduces the expected
 * fused outputs. Also exit codes for bad input (2 with usage, 1 for a failing conversion).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOfficialCheckpoint } from '../../src/checkpoints/official';
import { loadFuserFromDirectory } from '../../src/fuser/format/node-io';
import { main } from '../../src/cli/main';
import { fuseCache } from '../../src/fuser/reference';
import { parseSafetensors } from '../../src/fuser/safetensors';
import type { FuserWeights } from '../../src/types';
import { OFFICIAL_DIR, fixtureFiles, loadExpected } from './helpers';
import { requireLibBuild } from '../package/require-lib-build';
import { expectAllClose, expectAllCloseKV } from '../util/allclose';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'c2c-web.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'c2c-convert-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(...args: string[]) {
  requireLibBuild();
  return run(BIN, ...args);
}

function run(bin: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every weight of `a` and `b`, flattened in the same order. */
function flat(w: FuserWeights): number[] {
  const out: number[] = [];
  for (const layer of w.layers) {
    for (const p of [layer.key, layer.value]) {
      for (const lin of [p.in, p.scalarHead, p.projOut]) out.push(...lin.weight, ...(lin.bias ?? []));
      for (const b of [...p.mlp1, ...p.scalarMlp2, ...p.projMlp2]) out.push(...b.norm, ...b.w1.weight, ...b.w2.weight);
      out.push(p.gateLogit);
    }
  }
  return out;
}

describe('c2c-web convert', () => {
  it('round-trips tiny_llama_knn (explicit layer map, alignment on) exactly in the stored bf16', async () => {
    const out = join(tmp, 'knn');
    const r = cli('convert', join(OFFICIAL_DIR, 'tiny_llama_knn'), out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/converted 3 projectors .* bfloat16/);
    const json = JSON.parse(readFileSync(join(out, 'fuser.json'), 'utf8'));
    expect(json.dtype).toBe('bfloat16');
    expect(json.layer_map).toEqual([0, 2, 4]);
    expect(json.metadata.teacher_model).toBe('meta-llama/Llama-3.2-1B-Instruct');

    const converted = await loadFuserFromDirectory(out);
    const original = await loadOfficialCheckpoint(fixtureFiles('tiny_llama_knn', 3));
    expect(converted.config).toEqual(original.config);
    expect(flat(converted)).toEqual(flat(original));

    for (const c of loadExpected('tiny_llama_knn', 3, 5).cases) {
      expectAllCloseKV(fuseCache(converted, c.receiver, c.sharer), c.fused, { atol: 1e-5, what: 'converted fused' });
    }
  });

  it('honours --dtype (float32 exact, float16 within f16 rounding)', async () => {
    const original = flat(await loadOfficialCheckpoint(fixtureFiles('tiny_qwen', 4)));
    const f32 = join(tmp, 'f32');
    expect(cli('convert', join(OFFICIAL_DIR, 'tiny_qwen'), f32, '--dtype=float32').code).toBe(0);
    expect(flat(await loadFuserFromDirectory(f32))).toEqual(original);

    const f16 = join(tmp, 'f16');
    expect(cli('convert', join(OFFICIAL_DIR, 'tiny_qwen'), f16, '--dtype', 'float16').code).toBe(0);
    const half = await loadFuserFromDirectory(f16);
    expect(half.config.dtype).toBe('float16');
    const halfValues = flat(half);
    expect(halfValues.length).toBe(original.length);
    // Round-to-nearest f16: relative error <= 2^-11 for normals, absolute <= 2^-25 in the subnormal range.
    expectAllClose(halfValues, original, { rtol: 2 ** -11, atol: 2 ** -25, what: 'float16 weights' });
    const stored = parseSafetensors(new Uint8Array(readFileSync(join(f16, 'fuser.safetensors'))));
    expect(new Set([...stored.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['F16']));
  });

  it('fails with exit code 2 on bad arguments (in-process) and 1 on a hostile checkpoint (bin)', async () => {
    const run = async (...argv: string[]) => {
      const errs: string[] = [];
      const code = await main(argv, () => undefined, (s) => errs.push(s));
      return { code, stderr: errs.join('\n') };
    };
    const help = async (...argv: string[]) => {
      const outs: string[] = [];
      return { code: await main(argv, (s) => outs.push(s)), stdout: outs.join('\n') };
    };
    expect(await help('help', 'convert')).toEqual({ code: 0, stdout: expect.stringMatching(/^Usage: c2c-web convert/) });
    expect(await help('convert', '-h')).toEqual({ code: 0, stdout: expect.stringMatching(/^Usage: c2c-web convert/) });
    expect(await help('--help')).toEqual({ code: 0, stdout: expect.stringMatching(/Commands:\n {2}convert {2}/) });
    expect((await run()).code).toBe(2);
    expect((await run('--help')).code).toBe(0);
    expect((await run('convert', 'only-one')).code).toBe(2);
    expect(await run('convert', 'a', 'b', '--dtype', 'int4')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--dtype must be/) });
    expect(await run('convert', 'a', 'b', '--sharer-layers', '0')).toMatchObject(
      { code: 2, stderr: expect.stringMatching(/positive integer/) });
    expect((await run('frobnicate')).code).toBe(2);
    const bad = (stderr: RegExp) => ({ code: 2, stderr: expect.stringMatching(stderr) });
    expect(await run('convert', 'a', 'b', '--bogus')).toMatchObject(bad(/Unknown option '--bogus'[\s\S]*Usage: c2c-web convert/));
    expect(await run('convert', 'a', 'b', '--dtype')).toMatchObject(bad(/--dtype <value>' argument missing/));
    expect(await run('convert', 'a', 'b', '--sharer-layers', '2.5')).toMatchObject(bad(/positive integer/));
    expect(await run('convert', join(tmp, 'does-not-exist'), join(tmp, 'x'))).toMatchObject(
      { code: 1, stderr: expect.stringMatching(/missing file 'config\.json'/) });

    const evil = join(tmp, 'evil');
    cpSync(join(OFFICIAL_DIR, 'tiny_qwen'), evil, { recursive: true });
    cpSync(join(OFFICIAL_DIR, 'malicious', 'os_system.pt'), join(evil, 'final', 'projector_2.pt'));
    const r = cli('convert', evil, join(tmp, 'evil-out'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/CheckpointFormatError: final\/projector_2\.pt:.*'posix system' is not allowed/);
  });

  it('a checkout without dist-lib: the bin says how to build it (exit 1) instead of loading the sources', () => {
    const bare = join(tmp, 'bare', 'bin');
    mkdirSync(bare, { recursive: true });
    cpSync(BIN, join(bare, 'c2c-web.mjs'));
    const r = run(join(bare, 'c2c-web.mjs'), 'convert', 'a', 'b');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/dist-lib\/cli\.js is missing.*run `npm run build:lib`/);
  });
});
