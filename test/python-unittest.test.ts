/**
 * Runs the Python unit tests in train/tests (PyTorch projector, safetensors/fuser I/O, fixture reproduction)
 * with Debian's python3 when torch is importable there; skipped, with the reason, on machines without it.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const PYTHON = process.env.C2C_PYTHON ?? '/usr/bin/python3';
const hasTorch = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasTorch)(`python unit tests (${PYTHON} with torch)`, () => {
  it('train/tests pass', () => {
    const r = spawnSync(PYTHON, ['-m', 'unittest', 'discover', '-s', 'train/tests'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', PYTHONDONTWRITEBYTECODE: '1' },
      timeout: 300_000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    const ran = /Ran (\d+) tests?/.exec(out);
    expect(ran, out).not.toBeNull();
    expect(Number(ran![1])).toBeGreaterThan(0);
    expect(r.status, out).toBe(0);
    expect(out).toMatch(/\nOK/);
  });
});
