/**
 * Vite plugin for the library build (`vite build --mode lib`): Vite bundles the model worker into
 * dist-lib/assets/ but references it as `new URL(/* @vite-ignore *\/ "/assets/model.worker-….js", '' + import.meta.url)`:
 * an origin-absolute path that a consumer's bundler neither rewrites nor bundles. The worker keeps bare imports
 * (comlink, transformers.js, onnxruntime-web `?url` files), so the consumer's bundler MUST process it as a worker
 * entry: this rewrites the reference to the form bundlers detect, `new URL("./assets/model.worker-….js", import.meta.url)`,
 * relative to the chunk. Vite has no option for this (lib mode + workers is unsupported upstream), hence by hand.
 * The build fails if a chunk creates a Worker whose URL was not rewritten.
 */
import path from 'node:path';

// new URL(/* @vite-ignore */ "/assets/x.js", '' + import.meta.url)  →  groups: quote, assets/x.js, quote
const VITE_WORKER_URL =
  /new URL\(\s*\/\*\s*@vite-ignore\s*\*\/\s*(["'`])\/?(assets\/[^"'`]+?\.js)\1\s*,\s*(["'])\3\s*\+\s*import\.meta\.url\s*\)/g;
const ANALYSABLE = /new Worker\(\s*new URL\(\s*"\.{1,2}\/[^"]+\.js",\s*import\.meta\.url\s*\)/g;

export function libWorkerUrlPlugin() {
  return {
    name: 'c2c-lib-worker-url',
    apply: 'build',
    generateBundle(_options, bundle) {
      for (const chunk of Object.values(bundle)) {
        if (chunk.type !== 'chunk' || !chunk.code.includes('new Worker(')) continue;
        const dir = path.posix.dirname(chunk.fileName);
        chunk.code = chunk.code.replace(VITE_WORKER_URL, (_m, _q, file) => {
          const rel = path.posix.relative(dir, file);
          return `new URL(${JSON.stringify(rel.startsWith('.') ? rel : `./${rel}`)}, import.meta.url)`;
        });
        const workers = chunk.code.match(/new Worker\(/g)?.length ?? 0;
        const analysable = chunk.code.match(ANALYSABLE)?.length ?? 0;
        if (workers !== analysable) {
          this.error(`${chunk.fileName}: ${workers - analysable} Worker URL(s) not in the form consumers' bundlers detect`);
        }
      }
    },
  };
}
