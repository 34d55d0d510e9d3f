#!/usr/bin/env node
/**
 * `npm run standins -- [options]`: generates the random-weight stand-ins of the paper's real pair (see
 * docs/standins.md) through src/standins/ensure.ts, loaded with Vite's module runner like bin/c2c-web.mjs.
 * Prints what it wrote (sizes, timings) and the peak RSS; `--json FILE` also writes that report.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HELP = `usage: npm run standins -- [options]
  --layers N            depth of every model and number of fuser projectors (default: real depths)
  --sharer-layers N     sharer depth with --layers (default: N)
  --hidden N            narrower model bodies (KV widths, vocab and fuser widths stay real)
  --out DIR             root folder (default .cache/standins); the set goes to DIR/<variant>
  --seed N              weight seed
  --pairs A,B           qwen3-0.6b+qwen2.5-0.5b,qwen3-0.6b+llama3.2-1b (default both)
  --flavours A,B        fp32,fp16,q8 (default all)
  --conversions A,B     project-format fuser conversions: float32,float16,bfloat16,int8 (default float16,int8; "none")
  --no-fusers           models only
  --num-logits-to-keep  declare the num_logits_to_keep decoder input
  --external-data-threshold BYTES   weights from which a model uses external data (default 2000000000)
  --chunk-bytes BYTES   largest external data file (default 2000000000)
  --padding-side left|right         add padding_side to tokenizer_config.json
  --verify              open every model file with onnxruntime-node and run one 8-token prefill
  --json FILE           also write the report as JSON
  --quiet               print only the summary`;

const { values } = parseArgs({
  options: {
    layers: { type: 'string' },
    'sharer-layers': { type: 'string' },
    hidden: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string' },
    pairs: { type: 'string' },
    flavours: { type: 'string' },
    conversions: { type: 'string' },
    'no-fusers': { type: 'boolean' },
    'num-logits-to-keep': { type: 'boolean' },
    'external-data-threshold': { type: 'string' },
    'chunk-bytes': { type: 'string' },
    'padding-side': { type: 'string' },
    verify: { type: 'boolean' },
    json: { type: 'string' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const int = (name) => {
  const v = values[name];
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) {
    console.error(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return Number(v);
};
const list = (name) => (values[name] === undefined ? undefined : values[name] === 'none' ? [] : values[name].split(',').filter(Boolean));

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { runnerImport } = await import('vite');
const load = async (file) => (await runnerImport(join(root, 'src', 'standins', file),
  { root, configFile: false, logLevel: 'error', server: { watch: null } })).module;
const module = await load('ensure.ts');

const options = {
  out: values.out,
  layers: int('layers'),
  sharerLayers: int('sharer-layers'),
  hidden: int('hidden'),
  seed: int('seed'),
  pairs: list('pairs'),
  flavours: list('flavours'),
  conversions: list('conversions'),
  fusers: values['no-fusers'] ? false : undefined,
  numLogitsToKeep: values['num-logits-to-keep'] || undefined,
  externalDataThreshold: int('external-data-threshold'),
  chunkBytes: int('chunk-bytes'),
  paddingSide: values['padding-side'],
  log: values.quiet ? undefined : (line) => console.log(line),
};
try {
  const paths = await module.ensureStandins(options);
  const generationPeakRss = process.resourceUsage().maxRSS * 1024;
  const verified = [];
  if (values.verify) {
    const { verifyModelFolder } = await load('verify.ts');
    for (const dir of Object.values(paths.models)) verified.push(...(await verifyModelFolder(dir, options.log)));
  }
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const total = paths.parts.reduce((n, p) => n + p.bytes, 0);
  for (const p of paths.parts) {
    const size = `${(p.bytes / 1e6).toFixed(1).padStart(9)} MB ${p.seconds.toFixed(1).padStart(7)} s`;
    console.log(`${p.generated ? 'generated' : 'kept     '} ${size}  ${p.path}`);
  }
  console.log(`total ${(total / 1e6).toFixed(1)} MB in ${paths.seconds.toFixed(1)} s, peak RSS ${(generationPeakRss / 1e6).toFixed(0)} MB → ${paths.root}`);
  if (values.json) {
    // Paths relative to the working folder: the report may be committed (no machine-specific paths).
    const rel = (p) => relative(process.cwd(), p) || '.';
    const relAll = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'string' ? rel(v) : relAll(v)]));
    const report = { ...paths, root: rel(paths.root), models: relAll(paths.models), fusers: relAll(paths.fusers),
      converted: relAll(paths.converted), totalBytes: total, generationPeakRssBytes: generationPeakRss, peakRssBytes: peakRss,
      verified, node: process.version, cpus: cpus().length };
    writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  }
} catch (e) {
  console.error(`standins: ${e?.name ?? 'Error'}: ${e?.message ?? e}`);
  process.exit(1);
}
