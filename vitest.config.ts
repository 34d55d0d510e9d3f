/** Vitest: Node unit tests under test/ (browser tests drive system Chromium via playwright-core). */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'e2e/**/*.test.ts'],
    environment: 'node',
    // Builds dist-lib/ when stale: the bin (test/checkpoints/convert-cli) and the packed package (test/package) run it.
    globalSetup: ['test/package/lib-build.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
