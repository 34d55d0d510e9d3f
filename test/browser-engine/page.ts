/**
 * Test page for the browser engine: exposes the public API on `window.c2c` for Playwright to drive.
 * `instrumentWorkers(flags)` makes the next engines' model workers the instrumented test build
 * (instrumented.worker.ts; `flags` ride in the worker's name); `instrumentWorkers(null)` restores the real ones.
 */
import { clearPairCache, createC2CEngine, getPairCacheStatus, isPairCached, GENERATION_MODES } from '../../src';
import instrumentedWorkerUrl from './instrumented.worker.ts?worker&url';

const RealWorker = globalThis.Worker;

function instrumentWorkers(flags: string[] | null): void {
  if (!flags) {
    globalThis.Worker = RealWorker;
    return;
  }
  const name = (base = 'c2c') => [base, ...flags].join(';');
  globalThis.Worker = class extends RealWorker {
    constructor(url: string | URL, opts?: WorkerOptions) {
      if (!String(url).includes('model.worker')) super(url, opts);
      else super(instrumentedWorkerUrl, { ...opts, name: name(opts?.name) });
    }
  };
}

type MemoryMeasurement = { bytes: number; breakdown: { bytes: number; attribution: { scope: string }[] }[] };

/**
 * JS memory of the whole agent cluster (this page and its workers; ArrayBuffers included):
 * `performance.measureUserAgentSpecificMemory`, available because the page is cross-origin isolated (COOP/COEP
 * from vite.config.ts); immediate with Chromium's `--enable-blink-features=ForceEagerMeasureMemory`.
 */
async function measureMemory(): Promise<{ bytes: number; workerBytes: number[] } | null> {
  const p = performance as Performance & { measureUserAgentSpecificMemory?: () => Promise<MemoryMeasurement> };
  if (!crossOriginIsolated || !p.measureUserAgentSpecificMemory) return null;
  (globalThis as { gc?: () => void }).gc?.(); // the page's own garbage (Chromium with --js-flags=--expose-gc)
  const m = await p.measureUserAgentSpecificMemory();
  const workerBytes = m.breakdown.filter((b) => b.attribution.some((a) => a.scope === 'DedicatedWorkerGlobalScope')).map((b) => b.bytes);
  return { bytes: m.bytes, workerBytes };
}

declare global {
  interface Window {
    c2c: {
      createC2CEngine: typeof createC2CEngine;
      modes: typeof GENERATION_MODES;
      isPairCached: typeof isPairCached;
      getPairCacheStatus: typeof getPairCacheStatus;
      clearPairCache: typeof clearPairCache;
      instrumentWorkers: typeof instrumentWorkers;
      measureMemory: typeof measureMemory;
      ready: boolean;
    };
  }
}

window.c2c = { createC2CEngine, modes: GENERATION_MODES, isPairCached, getPairCacheStatus, clearPairCache, instrumentWorkers,
  measureMemory, ready: true };
