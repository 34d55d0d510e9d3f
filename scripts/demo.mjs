#!/usr/bin/env node
/**
 * `npm run demo`: builds the demo (index.html + src/demo, models/ copied to dist/models) and serves it with
 * `vite preview` on 127.0.0.1, printing the URL. Flags: --port N (default 4173), --no-build, --build-only
 * (`npm run build:demo`: the static site in dist/, no server).
 */
import { buildDemo, serveDemo } from '../e2e/harness.mjs';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : dflt;
};

if (!flag('--no-build')) {
  const t0 = Date.now();
  await buildDemo('dist');
  console.log(`[demo] built dist/ in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
if (flag('--build-only')) process.exit(0);
const server = await serveDemo('dist', Number(value('--port', '4173')));
console.log(`[demo] c2c-web demo: ${server.url}  (Ctrl+C to stop; WebGPU needs a secure context: use this 127.0.0.1 URL)`);
const stop = async () => { await server.close(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
