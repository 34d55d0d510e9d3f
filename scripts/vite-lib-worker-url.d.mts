import type { Plugin } from 'vite';
/** Library build: rewrites Vite's model-worker URL to `new URL("./assets/….js", import.meta.url)` so consumers' bundlers bundle it. */
export declare function libWorkerUrlPlugin(): Plugin;
