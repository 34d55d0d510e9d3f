import type { Plugin } from 'vite';
/** Serves `models/` at `/models/` (dev + preview) and copies it into the build output. */
export declare function c2cModelsPlugin(opts?: { dir?: string; urlPrefix?: string }): Plugin;
