#!/usr/bin/env node
/**
 * `c2c-web` CLI entry: runs the built CLI (dist-lib/cli.js, from src/cli/main.ts by `npm run build:lib`). The
 * published package ships that build; a source checkout without one gets told how to make it — this file never
 * loads a bundler or the TypeScript sources, so it works with production dependencies only.
 */
import { existsSync } from 'node:fs';

const cli = new URL('../dist-lib/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('c2c-web: dist-lib/cli.js is missing. In a source checkout, run `npm run build:lib` first.');
  process.exit(1);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
