/**
 * Vite plugin: serves the repo's `models/` folder at `/models/` in `vite` (dev) and `vite preview`, and copies it
 * into `<outDir>/models/` on `vite build`, so the demo loads the embedded pair with zero external requests.
 * Only browser-relevant files are copied (training checkpoints and caches are skipped).
 * Idempotent: if two instances end up in one config (config file + inline), the later one does nothing.
 */
import { createReadStream, existsSync, statSync, readdirSync, mkdirSync, copyFileSync } from 'node:fs';
import path from 'node:path';

const NAME = 'c2c-models';
const SKIP = [/\.pt$/, /\.pth$/, /\.ckpt$/, /__pycache__/, /(^|\/)\./];
const TYPES = {
  '.json': 'application/json',
  '.jsonl': 'application/x-ndjson',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
};

/** @param {{ dir?: string, urlPrefix?: string }} [opts] */
export function c2cModelsPlugin(opts = {}) {
  const urlPrefix = opts.urlPrefix ?? '/models/';
  let root = process.cwd();
  let outDir = 'dist';
  let active = true;
  // C2C_MODELS_DIR: serve another models folder (e.g. a fresh training run) without touching models/.
  const modelsDir = () => path.resolve(root, opts.dir ?? process.env.C2C_MODELS_DIR ?? 'models');

  /** Connect middleware answering `/models/...` from disk; 404 for anything missing (never index.html). */
  const middleware = (req, res, next) => {
    const url = decodeURIComponent((req.url ?? '').split('?')[0]);
    if (!active || !url.startsWith(urlPrefix)) return next();
    const base = modelsDir();
    const file = path.resolve(base, url.slice(urlPrefix.length));
    const rel = path.relative(base, file);
    if (rel.startsWith('..') || path.isAbsolute(rel) || SKIP.some((re) => re.test(rel))) {
      res.statusCode = 404;
      return res.end('not found');
    }
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      return res.end('not found');
    }
    res.setHeader('Content-Type', TYPES[path.extname(file)] ?? 'application/octet-stream');
    res.setHeader('Content-Length', String(statSync(file).size));
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-cache');
    createReadStream(file).pipe(res);
  };

  const copyTree = (src, dst) => {
    let n = 0;
    for (const ent of readdirSync(src, { withFileTypes: true })) {
      const s = path.join(src, ent.name);
      const rel = path.relative(modelsDir(), s);
      if (SKIP.some((re) => re.test(rel))) continue;
      if (ent.isDirectory()) n += copyTree(s, path.join(dst, ent.name));
      else if (ent.isFile()) {
        mkdirSync(dst, { recursive: true });
        copyFileSync(s, path.join(dst, ent.name));
        n++;
      }
    }
    return n;
  };

  const plugin = {
    name: NAME,
    configResolved(config) {
      root = config.root;
      outDir = path.resolve(config.root, config.build.outDir);
      // Deduplicate: only the first instance of this plugin in the resolved list stays active.
      active = config.plugins.find((p) => p.name === NAME) === plugin;
    },
    configureServer(server) {
      server.middlewares.use(middleware);
    },
    configurePreviewServer(server) {
      server.middlewares.use(middleware);
    },
    writeBundle() {
      // Library builds (`--mode lib`) don't ship models.
      if (!active || !existsSync(modelsDir()) || outDir.endsWith('dist-lib')) return;
      const n = copyTree(modelsDir(), path.join(outDir, 'models'));
      console.log(`[${NAME}] copied ${n} model files to ${path.relative(root, outDir)}/models`);
    },
  };
  return plugin;
}
