/**
 * Kept KV handles never outlive a failed C2C request: when one of the two concurrent prefills fails or is
 * aborted, or the fusion fails, every handle the request holds is released and the conversation cache is evicted
 * (the host's registry is empty afterwards), and the next request gives the golden tokens, leaving exactly the
 * three cached KVs of its prompt. Runs the real ModelHost on the shipped pair with a
 * proxy that makes one call fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, InvalidInputError } from '../../src/errors';
import { ModelHost } from '../../src/hosts/model-host';
import { nodePlatform } from '../../src/hosts/node-platform';
import type { C2CEngine, HostApi } from '../../src/types';
import { engineOnHost } from './host-engine';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB } from './pair';

type Fault = 'none' | 'sharer-prefill' | 'receiver-prefill' | 'sharer-prefill-abort' | 'fuse';

describe.skipIf(!PAIR)(`kept KV release on failure${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  const pair = PAIR_OR_STUB;
  const c = pair.golden.cases[0];
  const msgs = [{ role: 'user' as const, content: c.user }];
  const host = new ModelHost(nodePlatform());
  let fault: Fault = 'none';
  // The same host object serves both roles (the Node / single-worker topology): the sharer KV is kept there too.
  const faulty: HostApi = new Proxy(host, {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver);
      if (prop === 'prefill') {
        return async (role: 'sharer' | 'receiver', req: Parameters<HostApi['prefill']>[1]) => {
          if (fault === `${role}-prefill`) throw new InvalidInputError(`planted ${role} prefill failure`);
          if (fault === 'sharer-prefill-abort' && role === 'sharer') throw new AbortError('planted abort of the sharer prefill');
          return target.prefill(role, req);
        };
      }
      if (prop === 'fuse' && fault === 'fuse') return async () => Promise.reject(new InvalidInputError('planted fusion failure'));
      return typeof real === 'function' ? real.bind(target) : real;
    },
  });
  let engine: C2CEngine;

  beforeAll(async () => {
    engine = await engineOnHost(pair, host, faulty);
  });
  afterAll(async () => engine?.dispose());

  for (const f of ['sharer-prefill', 'receiver-prefill', 'sharer-prefill-abort', 'fuse'] as const) {
    it(`${f} failing leaves no kept KV behind, and the next request is golden`, async () => {
      fault = f;
      await expect(engine.generate(msgs, { mode: 'c2c', maxNewTokens: 4 })).rejects.toThrow(/planted/);
      expect(host.keptHandles).toBe(0);
      fault = 'none';
      const ok = await engine.generate(msgs, { mode: 'c2c', maxNewTokens: pair.golden.max_new_tokens });
      expect(ok.tokenIds).toEqual(c.c2c.output_ids);
      // Exactly the conversation cache remains: the prompt's raw receiver, raw sharer and fused KV.
      expect(host.keptHandles).toBe(3);
    });
  }
});
