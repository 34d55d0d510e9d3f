/**
 * Memory over many C2C generations on the Node engine (onnxruntime-node): what a leaked KV cache would grow is
 * counted, not the V8 heap alone. A cache lives in ArrayBuffers (our Float32Arrays, and onnxruntime-node's
 * output tensors, which it copies into JS ArrayBuffers), so `arrayBuffers` and `external` must stay flat;
 * `heapUsed` and RSS are sanity bounds; the host's KV handle registry must not grow from request to request.
 * Bounds are multiples of one receiver cache (the unit a per-request leak adds), and the run is long enough that
 * leaking one cache per request exceeds each bound several times over.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ModelHost } from '../../src/hosts/model-host';
import { nodePlatform } from '../../src/hosts/node-platform';
import type { C2CEngine } from '../../src/types';
import { engineOnHost } from './host-engine';
import { NO_PAIR_REASON, PAIR, PAIR_OR_STUB, pairDims } from './pair';

// onnxruntime-node's arena and the allocator pools grow over the first few dozen requests, then stay flat.
const WARMUP = 30;
const RUNS = 60;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Full GCs with turns in between (ArrayBuffer backing stores are freed by a sweeper after the GC). */
async function settled(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  return process.memoryUsage();
}

describe.skipIf(!PAIR)(`memory over ${RUNS} c2c generations${PAIR ? '' : ` (skipped: ${NO_PAIR_REASON})`}`, () => {
  const pair = PAIR_OR_STUB;
  const cases = pair.golden.cases;
  const host = new ModelHost(nodePlatform());
  let engine: C2CEngine;

  beforeAll(async () => {
    engine = await engineOnHost(pair, host);
  });
  afterAll(async () => engine?.dispose());

  it('ArrayBuffers, external memory, heap and RSS stay flat; the KV handle count does not grow', async () => {
    const r = pairDims(pair, 'receiver');
    // The smallest receiver cache over prompt[:-1] (f32 K and V per layer): the least a per-request leak keeps.
    const kvTokens = Math.min(...cases.map((c) => c.prompt_ids.length - 1));
    const cacheBytes = 2 * r.numLayers * r.kvHeads * kvTokens * r.headDim * 4;
    // What onnxruntime allocates in KV per request (at most): two prefills, the fused cache, a present per step.
    const kvPerRequest = (3 + Math.max(...cases.map((c) => c.c2c.output_ids.length))) * cacheBytes;
    let kept = -1;
    // The golden prompts in turn (each its own fusion, also with a conversation cache that reuses prefixes).
    const run = async (i: number) => {
      const c = cases[i % cases.length];
      const res = await engine.generate([{ role: 'user', content: c.user }], { mode: 'c2c', maxNewTokens: pair.golden.max_new_tokens });
      expect(res.tokenIds).toEqual(c.c2c.output_ids);
      // Constant after every request: none, or one conversation's cache (raw receiver, raw sharer, fused).
      if (kept < 0) kept = host.keptHandles;
      expect(host.keptHandles).toBe(kept);
    };
    for (let i = 0; i < WARMUP; i++) await run(i);
    expect(kept).toBeLessThanOrEqual(3);
    const before = await settled();
    for (let i = 0; i < RUNS; i++) await run(i);
    const after = await settled();
    const grew = (k: keyof NodeJS.MemoryUsage) => after[k] - before[k];
    const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
    console.log(
      `[memory] ${RUNS} c2c generations, smallest cache ${kib(cacheBytes)}, ${kept} handles kept: growth arrayBuffers ` +
        `${kib(grew('arrayBuffers'))}, external ${kib(grew('external'))}, heapUsed ${kib(grew('heapUsed'))}, rss ${kib(grew('rss'))}`,
    );
    // A leak of one cache per request grows arrayBuffers and external by RUNS caches: 15× these bounds.
    expect(grew('arrayBuffers')).toBeLessThan(4 * cacheBytes);
    expect(grew('external')).toBeLessThan(4 * cacheBytes);
    // The heap holds only the wrappers of a leaked cache; a sanity bound against JS objects piling up (half a
    // cache's bytes per request; the heap moves by about ±1 MiB between full GCs here).
    expect(grew('heapUsed')).toBeLessThan((RUNS * cacheBytes) / 2);
    // RSS (allocator pools, onnxruntime's native arena): a sanity bound against native KV never being freed,
    // i.e. everything onnxruntime allocates in KV per request.
    expect(grew('rss')).toBeLessThan(RUNS * kvPerRequest);
  });
});
