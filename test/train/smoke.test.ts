/**
 * Runs the Python training pipeline end to end in smoke mode (a few steps per stage, into a temp dir) and
 * checks what it produced: both model folders load in transformers.js with matching tokenization and greedy
 * output (checked inside the pipeline), a fuser in the c2c-web format, the eval report and golden fixtures.
 * Skipped where Debian's /usr/bin/python3 cannot import torch (the pipeline needs PyTorch).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const PY = process.env.C2C_PYTHON ?? '/usr/bin/python3';
const repo = path.resolve(import.meta.dirname, '..', '..');
const hasTorch = existsSync(PY) && spawnSync(PY, ['-c', 'import torch, onnx'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasTorch)('train/train_all.py --smoke', () => {
  it('trains, exports, fuses, evaluates and writes golden fixtures', () => {
    const out = mkdtempSync(path.join(tmpdir(), 'c2c-smoke-'));
    try {
      const r = spawnSync(PY, [path.join(repo, 'train', 'train_all.py'), '--smoke', '--out', out], {
        cwd: repo, encoding: 'utf8', timeout: 170_000, env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
      });
      expect(r.status, r.stderr?.slice(-2000)).toBe(0);
      for (const role of ['receiver', 'sharer']) {
        for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx']) {
          expect(existsSync(path.join(out, role, f)), `${role}/${f}`).toBe(true);
        }
      }
      const lm = JSON.parse(readFileSync(path.join(out, 'lm_info.json'), 'utf8'));
      expect(lm.node_parity.ok).toBe(true);
      const rc = JSON.parse(readFileSync(path.join(out, 'receiver', 'config.json'), 'utf8'));
      const sc = JSON.parse(readFileSync(path.join(out, 'sharer', 'config.json'), 'utf8'));
      expect(sc.num_hidden_layers).toBeLessThan(rc.num_hidden_layers);
      const fuser = JSON.parse(readFileSync(path.join(out, 'fuser', 'fuser.json'), 'utf8'));
      expect(fuser.format).toBe('c2c-fuser');
      expect(fuser.format_version).toBe(2); // train/c2c/fuser_io.py writes upstream's layout (scalar_mlp2 inner = hidden)
      expect(fuser.receiver).toEqual({ num_layers: rc.num_hidden_layers, num_kv_heads: rc.num_key_value_heads, head_dim: rc.head_dim });
      expect(fuser.sharer).toEqual({ num_layers: sc.num_hidden_layers, num_kv_heads: sc.num_key_value_heads, head_dim: sc.head_dim });
      const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'));
      for (const split of ['validation', 'test']) {
        for (const m of ['receiver', 'sharer', 'text_relay', 'c2c']) {
          const e = report.eval[split][m];
          expect(e.n, `${split} ${m}`).toBeGreaterThan(0);
          expect(e.accuracy).toBeCloseTo(e.correct / e.n, 4);
          expect(e.mc).toBeGreaterThanOrEqual(0);
          expect(e.short).toBeLessThanOrEqual(1);
        }
      }
      // the splits are disjoint: no person is in both item sets, nor among the fuser's training people
      const people = (f: string) => new Set(readFileSync(path.join(out, f), 'utf8').trim().split('\n')
        .map((l) => JSON.parse(l).entity as string));
      const [val, test] = [people('eval_validation.jsonl'), people('eval_test.jsonl')];
      expect([...val].filter((n) => test.has(n))).toEqual([]);
      expect(val.size).toBeGreaterThan(0);
      const golden = JSON.parse(readFileSync(path.join(out, 'golden', 'golden.json'), 'utf8'));
      expect(golden.cases.length).toBe(6);
      expect(new Set(golden.cases.map((c: { type: string }) => c.type))).toEqual(new Set(['mc', 'short']));
      for (const c of golden.cases) {
        expect(c.prompt_ids[0]).toBe(1); // <|im_start|>
        expect(c.c2c.output_ids.length).toBeGreaterThan(0);
      }
      const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
      expect(manifest.files['fuser/fuser.safetensors'].sha256).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);
});
