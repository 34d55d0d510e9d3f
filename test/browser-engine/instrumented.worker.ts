/**
 * The model worker as the browser memory and fallback tests run it: the instrumentation first (module order),
 * then the real worker module. `self.__c2cWorkerStats()` is read by Playwright's `worker.evaluate` after a
 * full GC (Chromium started with `--js-flags=--expose-gc`) and a turn for finalizers.
 */
import { gpuBufferStats, wasmMemoryBytes, type GpuBufferStats } from './instrument';
import { host } from '../../workers/model.worker';

export interface WorkerStats {
  keptHandles: number;
  gpu: GpuBufferStats;
  wasmBytes: number[];
  /** performance.memory.usedJSHeapSize (Chromium; exact with --enable-precise-memory-info), or null. */
  jsHeapBytes: number | null;
}

async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 20));
  }
}

Object.assign(self, {
  async __c2cWorkerStats(since?: number): Promise<WorkerStats> {
    await settle();
    const mem = (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory;
    return { keptHandles: host.keptHandles, gpu: gpuBufferStats(since), wasmBytes: wasmMemoryBytes(),
      jsHeapBytes: mem?.usedJSHeapSize ?? null };
  },
  __c2cHasGc: typeof (globalThis as { gc?: unknown }).gc === 'function',
});
