/**
 * KV-level parity with PyTorch (golden/kv.safetensors from train/golden.py): the receiver and sharer prefill
 * caches over prompt[:-1] as read from transformers.js `present.*`, the fused receiver cache from the fuser the
 * engine loads, and the receiver's first-step logits on the fused cache.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { nodePlatform } from '../../src/node';
import { CausalLM } from '../../src/models/causal-lm';
import { loadFuserFromDirectory } from '../../src/fuser/format/node-io';
import { createReferenceFuser } from '../../src/fuser/reference';
import { parseSafetensors, tensorToFloat32 } from '../../src/fuser/safetensors';
import { sliceSeq } from '../../src/kv/ops';
import type { KVTensor } from '../../src/types';
import { PAIR, PAIR_OR_STUB } from './pair';
import { maxAbsDiff } from '../util/allclose';

const kvFile = PAIR ? path.join(PAIR.dir, 'golden/kv.safetensors') : '';
const HAS_KV = !!PAIR && existsSync(kvFile);

describe.skipIf(!HAS_KV)(`KV parity with PyTorch${HAS_KV ? '' : ' (skipped: no golden/kv.safetensors)'}`, () => {
  const pair = PAIR_OR_STUB;
  const lms: Record<string, CausalLM> = {};
  let tensors: Map<string, Float32Array>;

  beforeAll(async () => {
    const st = parseSafetensors(new Uint8Array(readFileSync(kvFile)));
    tensors = new Map([...st.tensors].filter(([, t]) => t.dtype === 'F32').map(([k, t]) => [k, tensorToFloat32(t)]));
    for (const role of ['receiver', 'sharer'] as const) {
      const src = { id: role, localPath: pair.dir };
      nodePlatform().configureEnv(src, { device: 'cpu', allowRemoteModels: false, shareDevice: false, topology: 'node' });
      lms[role] = await CausalLM.load(src, { device: 'cpu' });
    }
  });
  afterAll(async () => {
    for (const m of Object.values(lms)) await m.dispose();
  });

  it('prefill KV, fused KV and first-step logits match PyTorch for every case and layer', async () => {
    const fuser = createReferenceFuser(await loadFuserFromDirectory(path.join(pair.dir, 'fuser')));
    const head = (t: KVTensor, n: number) => sliceSeq(t, 0, n).data;
    let worst = { prefill: 0, fused: 0, logits: 0 };
    for (const c of pair.golden.cases) {
      const ids = c.prompt_ids;
      const n = (c as unknown as { kv_tokens: number }).kv_tokens;
      const rkv = await lms.receiver.prefillKV(ids.slice(0, -1));
      const skv = await lms.sharer.prefillKV(ids.slice(0, -1));
      for (const [role, kv] of [['receiver', rkv], ['sharer', skv]] as const) {
        kv.forEach((l, i) => {
          for (const w of ['key', 'value'] as const) {
            worst.prefill = Math.max(worst.prefill, maxAbsDiff(head(l[w], n), tensors.get(`c${c.case}.${role}.${i}.${w}`)!));
          }
        });
      }
      const fused = await fuser.fuse(rkv, skv);
      fused.forEach((l, i) => {
        for (const w of ['key', 'value'] as const) worst.fused = Math.max(worst.fused,
          maxAbsDiff(head(l[w], n), tensors.get(`c${c.case}.fused.${i}.${w}`)!));
      });
      const step = await lms.receiver.forward([ids.at(-1)!], [ids.length - 1], lms.receiver.pastFromKV(fused));
      worst.logits = Math.max(worst.logits, maxAbsDiff(step.logits, tensors.get(`c${c.case}.c2c.first_logits`)!));
    }
    console.log(`[kv parity] max |diff| prefill ${worst.prefill.toExponential(2)}, fused ${worst.fused.toExponential(2)}, first logits ${worst.logits.toExponential(2)}`);
    expect(worst.prefill).toBeLessThan(1e-4);
    expect(worst.fused).toBeLessThan(1e-3);
    expect(worst.logits).toBeLessThan(1e-3);
  });
});
