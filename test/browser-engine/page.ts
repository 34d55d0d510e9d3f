/** Test page for the browser engine: exposes the public API on `window.c2c` for Playwright to drive. */
import { clearPairCache, createC2CEngine, getPairCacheStatus, isPairCached, GENERATION_MODES } from '../../src';

declare global {
  interface Window {
    c2c: {
      createC2CEngine: typeof createC2CEngine;
      modes: typeof GENERATION_MODES;
      isPairCached: typeof isPairCached;
      getPairCacheStatus: typeof getPairCacheStatus;
      clearPairCache: typeof clearPairCache;
      ready: boolean;
    };
  }
}

window.c2c = { createC2CEngine, modes: GENERATION_MODES, isPairCached, getPairCacheStatus, clearPairCache, ready: true };
