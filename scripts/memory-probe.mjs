/**
 * Peak memory of one phase of a Node process, for the benchmarks that measure each part in a fresh process
 * (bench-official-load, bench-scale-node): Linux VmHWM reset through /proc/self/clear_refs, over the RSS at the
 * start, plus V8's ArrayBuffer and external bytes (which RSS shows late or not at all) sampled at every
 * `sample()` call and, with `intervalMs`, on a timer.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export const vmHwmBytes = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;

/** Starts a probe at the current memory (call gc first for a clean baseline); `stop()` ends it. */
export function startPeakProbe({ intervalMs } = {}) {
  const base = process.memoryUsage();
  writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
  let peakBuffers = base.arrayBuffers, peakExternal = base.external;
  const sample = () => {
    const m = process.memoryUsage();
    peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
    peakExternal = Math.max(peakExternal, m.external);
  };
  const timer = intervalMs ? setInterval(sample, intervalMs) : undefined;
  return {
    base,
    sample,
    stop() {
      clearInterval(timer);
      sample();
      const m = process.memoryUsage();
      return {
        peakExtraRssBytes: Math.max(0, vmHwmBytes() - base.rss),
        peakExtraArrayBuffersBytes: peakBuffers - base.arrayBuffers,
        peakExtraExternalBytes: peakExternal - base.external,
        rssAfterBytes: m.rss,
        arrayBuffersAfterBytes: m.arrayBuffers,
      };
    },
  };
}

/** Bytes of the distinct Float32Arrays reachable from `value` (a fuser's weights: each array counted once). */
export function float32Bytes(value) {
  const seen = new Set();
  let bytes = 0;
  const visit = (a) => {
    if (a instanceof Float32Array) {
      if (!seen.has(a)) {
        seen.add(a);
        bytes += a.byteLength;
      }
    } else if (a && typeof a === 'object') for (const x of Object.values(a)) visit(x);
  };
  visit(value);
  return bytes;
}
