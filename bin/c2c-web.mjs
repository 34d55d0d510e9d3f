#!/usr/bin/env node
/**
 * `c2c-web` CLI entry (see src/cli/main.ts). Runs the TypeScript sources through Vite's module runner
 * (vite is a devDependency, so this works in a clean clone after `npm ci`, with no build step).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { runnerImport } = await import('vite');
const { module } = await runnerImport(join(root, 'src', 'cli', 'main.ts'), {
  root,
  configFile: false,
  logLevel: 'error',
  server: { watch: null },
});
process.exitCode = await module.main(process.argv.slice(2));
