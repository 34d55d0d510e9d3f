/**
 * Vite config for both outputs of the project:
 *  - `vite build --mode lib`: the embeddable ESM package (src/index.ts → dist-lib/index.js, src/node.ts → dist-lib/node.js,
 *    src/cli/main.ts → dist-lib/cli.js for bin/c2c-web.mjs; the model worker → dist-lib/assets/model.worker-*.js);
 *  - `vite build` / `vite` / `vite preview`: the demo app (index.html → dist/).
 * COOP/COEP make the page cross-origin isolated so onnxruntime-web can use wasm threads.
 */
import { defineConfig } from 'vite';
import { resolve } from 'node:path';
import { c2cModelsPlugin } from './scripts/vite-models-plugin.mjs';
import { libWorkerUrlPlugin } from './scripts/vite-lib-worker-url.mjs';

const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig(({ mode }) => {
  if (mode === 'lib') {
    return {
      build: {
        target: 'esnext',
        outDir: 'dist-lib',
        // build:lib runs tsc (dist-lib/types) after this, so emptying drops only stale hashed chunks.
        emptyOutDir: true,
        sourcemap: true,
        lib: {
          entry: {
            index: resolve(import.meta.dirname, 'src/index.ts'),
            node: resolve(import.meta.dirname, 'src/node.ts'),
            cli: resolve(import.meta.dirname, 'src/cli/main.ts'),
          },
          formats: ['es'],
          fileName: (_format, name) => `${name}.js`,
        },
        rollupOptions: {
          // Consumers bring their own copies of the heavy runtime dependencies.
          external: [/^@huggingface\/transformers/, /^onnxruntime-/, /^comlink/, /^node:/],
        },
      },
      // The consumer's bundler must bundle the worker (its imports are bare): keep its URL analysable.
      plugins: [libWorkerUrlPlugin()],
      // The model worker keeps the runtime dependencies external too: otherwise lib mode inlines every
      // onnxruntime wasm as base64 (~108 MB); the consumer's bundler resolves and emits them instead.
      worker: {
        format: 'es' as const,
        rollupOptions: { external: [/^@huggingface\/transformers/, /^onnxruntime-/, /^comlink/, /^node:/] },
      },
    };
  }
  return {
    // 'mpa': a missing model file must be a 404, not index.html (transformers.js parses it as JSON).
    appType: 'mpa' as const,
    // Serves models/ at /models/ (dev, preview) and copies it into the static build.
    plugins: [c2cModelsPlugin()],
    server: { headers: isolationHeaders, host: '127.0.0.1' },
    preview: { headers: isolationHeaders, host: '127.0.0.1' },
    worker: { format: 'es' as const },
    build: { target: 'esnext', outDir: 'dist' },
  };
});
