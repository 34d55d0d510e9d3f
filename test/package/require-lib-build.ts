/** For tests that run dist-lib (the bin, the packed package): fails with the build log when the global setup's build failed. */
import { inject } from 'vitest';

export function requireLibBuild(): void {
  const state = inject('libBuild');
  if (!state) throw new Error('dist-lib state unknown: run through vitest.config.ts (globalSetup test/package/lib-build.ts)');
  if (!state.ok) throw new Error(`npm run build:lib failed, so dist-lib is not the current sources:\n${state.log.slice(-4000)}`);
}
