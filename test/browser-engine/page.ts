/** Test page for the browser engine: exposes the public API on `window.c2c` for Playwright to drive. */
import { createC2CEngine, GENERATION_MODES } from '../../src';

declare global {
  interface Window {
    c2c: { createC2CEngine: typeof createC2CEngine; modes: typeof GENERATION_MODES; ready: boolean };
  }
}

window.c2c = { createC2CEngine, modes: GENERATION_MODES, ready: true };
