/**
 * bench:scale's report: medians over the rounds, FLOP counts, the ratios the paper's Table 3 reads as, and
 * the device. Kept apart from the runner so the arithmetic is one small module (scripts/bench-scale.mjs).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PAPER } from '../src/demo/paper-reference.mjs';

const REPO = path.resolve(import.meta.dirname, '..');

const t = PAPER.tableMs;
/** The paper's Table 3 (src/demo/paper-reference.mjs) with the ratios bench:scale reports beside ours. */
export const PAPER_TABLE_3 = {
  source: `${PAPER.source}, Table 3 (${PAPER.pair}, ${PAPER.device})`,
  receiverPrefillMs: t.receiverPrefill, fusionMs: t.fusion, fusionOverReceiverPrefill: +(t.fusion / t.receiverPrefill).toFixed(1),
  receiverMs: t.receiver, c2cMs: t.c2c, textToTextMs: t.textRelay,
  c2cOverReceiver: +(t.c2c / t.receiver).toFixed(2), textRelayOverC2C: +(t.textRelay / t.c2c).toFixed(2),
};

export function deviceSlug() {
  const model = (os.cpus()[0]?.model ?? 'cpu').toLowerCase().replace(/\(r\)|\(tm\)|processor|\d+-core/g, '');
  const cpu = model.trim().split(/\s+/).slice(0, 2).join('-');
  return `${cpu.replace(/[^a-z0-9-]/g, '')}-${os.cpus().length}core`;
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
};
const round = (x, d = 2) => (x === null || !Number.isFinite(x) ? null : +x.toFixed(d));
const gib = (b) => round(b / 2 ** 30, 3);

/** Decoder FLOPs of a prefill over `n` tokens: Linears, causal attention, and the LM head over `logitRows` rows. */
export function prefillFlops(cfg, n, logitRows = n) {
  const h = cfg.hidden_size, heads = cfg.num_attention_heads, kv = cfg.num_key_value_heads;
  const hd = cfg.head_dim ?? h / heads, inter = cfg.intermediate_size, L = cfg.num_hidden_layers;
  const linearPerToken = 2 * (h * (heads + 2 * kv) * hd + heads * hd * h + 3 * h * inter);
  const attention = 2 * 2 * heads * hd * ((n * (n + 1)) / 2);
  const body = L * (n * linearPerToken + attention);
  const lmHead = 2 * h * cfg.vocab_size * logitRows;
  return {
    formula: 'layers × (n × 2·(h·(heads+2·kvHeads)·headDim + heads·headDim·h + 3·h·intermediate) + 4·heads·headDim·n(n+1)/2)'
      + ' + 2·h·vocab·logitRows',
    n, logitRows, bodyGflop: round(body / 1e9, 3), lmHeadGflop: round(lmHead / 1e9, 3), gflop: round((body + lmHead) / 1e9, 3),
  };
}

/** Medians of one backend's rounds, per stage. */
function stages(rounds) {
  const pick = (mode, f) => median(rounds.map((r) => (r[mode] ? f(r[mode]) : NaN)));
  const perToken = (m) => (m.answerTokens > 1 ? m.timing.decodeMs / (m.answerTokens - 1) : NaN);
  return {
    receiverPrefillMs: round(pick('receiver', (m) => m.timing.receiverPrefillMs)),
    receiverDecodeMsPerToken: round(pick('receiver', perToken)),
    receiverTotalMs: round(pick('receiver', (m) => m.timing.totalMs)),
    c2cSharerPrefillMs: round(pick('c2c', (m) => m.timing.sharerPrefillMs)),
    c2cReceiverPrefillMs: round(pick('c2c', (m) => m.timing.receiverPrefillMs)),
    fuseMs: round(pick('c2c', (m) => m.timing.fuseMs)),
    c2cTtftMs: round(pick('c2c', (m) => m.timing.ttftMs)),
    c2cDecodeMsPerToken: round(pick('c2c', perToken)),
    c2cTotalMs: round(pick('c2c', (m) => m.timing.totalMs)),
    relayHintMs: round(pick('text-relay', (m) => m.timing.relayMs)),
    textRelayTotalMs: round(pick('text-relay', (m) => m.timing.totalMs)),
    promptTokens: pick('receiver', (m) => m.promptTokens),
    answerTokens: pick('c2c', (m) => m.answerTokens),
    hintTokens: pick('text-relay', (m) => m.hintTokens),
    relayPromptTokens: pick('text-relay', (m) => m.promptTokens),
  };
}

function ratiosOf(s, flops) {
  const fuserGflops = flops.fuser.gflop / (s.fuseMs / 1e3);
  const prefillGflops = flops.receiverPrefill.gflop / (s.receiverPrefillMs / 1e3);
  return {
    fusionOverReceiverPrefill: round(s.fuseMs / s.receiverPrefillMs),
    fuserEfficiencyOverPrefill: round(fuserGflops / prefillGflops),
    c2cOverReceiver: round(s.c2cTotalMs / s.receiverTotalMs),
    textRelayOverC2C: round(s.textRelayTotalMs / s.c2cTotalMs),
    fuserGflops: round(fuserGflops), receiverPrefillGflops: round(prefillGflops),
  };
}

const memoryOf = (m) => m && {
  peakExtraRssGiB: gib(m.peakExtraRssBytes), peakExtraArrayBuffersGiB: gib(m.peakExtraArrayBuffersBytes),
  peakExtraExternalGiB: gib(m.peakExtraExternalBytes), rssAfterGiB: gib(m.rssAfterBytes),
};

function versionOf(pkg) {
  try {
    return JSON.parse(readFileSync(path.join(REPO, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

export function buildReport({ preset, standins, layers, prompt, answer, hint, reps, results, flags, pathFlopsPerToken, loadAtStart }) {
  const cfg = JSON.parse(readFileSync(path.join(standins.models['qwen3-0.6b'], 'config.json'), 'utf8'));
  const fuserPart = results.node?.fuser;
  const n = prompt.tokens - 1; // both prefills and the fusion cover ids[:-1]; the last token runs on the fused cache
  const fuserCfg = fuserPart?.config;
  const openPaths = fuserPart?.openPaths ?? 2 * (layers ?? preset.receiver.arch.numLayers) - 1;
  const dims = fuserCfg ?? {
    receiver: { numLayers: cfg.num_hidden_layers, kvHeads: cfg.num_key_value_heads, headDim: cfg.head_dim },
    sharer: { numLayers: layers ?? preset.sharer.arch.numLayers, kvHeads: preset.sharer.arch.kvHeads, headDim: preset.sharer.arch.headDim },
    hiddenDim: preset.fuserHidden, intermediateDim: preset.fuserIntermediate, numMlpLayers: preset.fuserMlpLayers,
  };
  const flops = {
    receiverPrefill: prefillFlops(cfg, n),
    fuser: {
      formula: 'openPaths × n × Σ 2·out·in over the Linears of one path (src/fuser/shapes.ts pathFlopsPerToken)',
      n, openPaths, gflopPerTokenPerPath: round(pathFlopsPerToken(dims) / 1e9, 5),
      gflop: round((openPaths * n * pathFlopsPerToken(dims)) / 1e9, 3),
    },
  };
  const backends = {};
  if (results.node) {
    const { fuser, models, run } = results.node;
    const s = stages(run.rounds);
    backends.node = {
      runtime: `onnxruntime-node ${versionOf('onnxruntime-node')} (CPU EP) via @huggingface/transformers `
        + versionOf('@huggingface/transformers'),
      dtype: run.dtype, kvDType: run.device.models.receiver.kvDType, deviceReport: run.device,
      load: {
        receiver: { ms: models.receiver.loadMs, memory: memoryOf(models.receiver.memory) },
        sharer: { ms: models.sharer.loadMs, memory: memoryOf(models.sharer.memory) },
        fuserCheckpoint: {
          ms: fuser.checkpointLoad.ms, memory: memoryOf(fuser.checkpointLoad.memory), fileBytes: fuser.fileBytes,
          weightBytes: fuser.weightBytes, files: fuser.files,
        },
        fuserOnnxCompile: { ms: fuser.onnxCompile.ms, memory: memoryOf(fuser.onnxCompile.memory) },
        engine: {
          ms: run.loadMs, memory: memoryOf(run.loadMemory),
          note: 'the whole pair from the warm transformers.js file cache; fuser through the mirror',
        },
      },
      generationMemory: memoryOf(run.generationMemory),
      stages: s, ratios: ratiosOf(s, flops),
    };
  }
  const c = results.chromium;
  if (c && !c.failed) {
    const s = stages(c.rounds);
    backends.chromium = {
      runtime: `${c.browser}, onnxruntime-web ${versionOf('onnxruntime-web')} (wasm) in one Web Worker per model`,
      dtype: flags['browser-dtype'], kvDType: c.device.models.receiver.kvDType, deviceReport: c.device,
      load: { engineMs: c.loadMs, perPartWindowsMs: c.loadWindows, note: 'workers load concurrently: windows overlap' },
      memory: {
        peakExtraPssDuringLoadGiB: gib(c.memory.peakExtraPssDuringLoadBytes), peakExtraPssGiB: gib(c.memory.peakExtraPssBytes),
        jsMemoryAfterLoadGiB: c.jsMemoryAfterLoad ? gib(c.jsMemoryAfterLoad.bytes) : null,
        note: 'PSS of every Chromium process over the opened page; wasm heaps and ArrayBuffers included',
      },
      stages: s, ratios: ratiosOf(s, flops),
    };
  } else if (c) backends.chromium = c;
  const primary = backends.node ?? backends.chromium;
  return {
    benchmark: 'bench:scale — the paper\'s pair on random-weight stand-ins at the released sizes, the Hub preset path'
      + ' through a local mirror',
    measuredAt: new Date().toISOString(),
    pair: preset.name,
    standins: { variant: standins.variant, layers: layers ?? 'full', receiverLayers: cfg.num_hidden_layers },
    lengths: { promptTokens: prompt.tokens, answerTokensAsked: answer, hintTokensAsked: hint },
    reps,
    device: {
      cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryGiB: gib(os.totalmem()), node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      loadAverage1m: { start: round(loadAtStart?.[0] ?? NaN), end: round(os.loadavg()[0]) },
      gpu: 'none: no WebGPU adapter that is a real GPU on this machine (SwiftShader is software: correctness only), so no WebGPU run',
    },
    kvDType: primary?.kvDType ?? null,
    flops,
    ratios: primary?.ratios ?? null,
    memory: { officialLoadPeakOverFile: fuserPart?.checkpointLoad.peakOverFile ?? null },
    paperReference: PAPER_TABLE_3,
    backends,
  };
}

/** The docs/benchmarks.md table of a report, beside the paper's Table 3 (printed by bench:scale). */
export function markdownTable(report, file) {
  const p = report.paperReference;
  const cols = Object.entries(report.backends).filter(([, b]) => b.stages);
  const label = ([k, b]) => `${k === 'node' ? 'Node CPU' : 'Chromium wasm'} (${b.dtype}, ${b.kvDType} KV)`;
  const head = `| | paper Table 3 (one A100) | ${cols.map(label).join(' | ')} |`;
  const row = (label, paper, f) => `| ${label} | ${paper} | ${cols.map(([, b]) => f(b)).join(' | ')} |`;
  const ms = (x) => (x === null ? '—' : `${Math.round(x).toLocaleString('en-US')} ms`);
  return [
    `From \`${file}\` (${report.device.cpu}, ${report.device.cores} cores; prompt ${report.lengths.promptTokens} tokens, `
      + `answer ${report.lengths.answerTokensAsked}, hint ${report.lengths.hintTokensAsked}; medians of ${report.reps} rounds):`,
    '',
    head,
    `|---|---|${cols.map(() => '---').join('|')}|`,
    row('receiver prefill', `${p.receiverPrefillMs} ms`, (b) => ms(b.stages.receiverPrefillMs)),
    row('sharer prefill (in C2C)', '—', (b) => ms(b.stages.c2cSharerPrefillMs)),
    row('fusion', `${p.fusionMs} ms`, (b) => ms(b.stages.fuseMs)),
    row('decode per token (C2C)', '—', (b) => ms(b.stages.c2cDecodeMsPerToken)),
    row('receiver alone, end to end', `${p.receiverMs} ms`, (b) => ms(b.stages.receiverTotalMs)),
    row('C2C, end to end', `${p.c2cMs} ms`, (b) => ms(b.stages.c2cTotalMs)),
    row('text relay, end to end', `${p.textToTextMs.toLocaleString('en-US')} ms`, (b) => ms(b.stages.textRelayTotalMs)),
    row('fusion ÷ receiver prefill', `${p.fusionOverReceiverPrefill}×`, (b) => `${b.ratios.fusionOverReceiverPrefill}×`),
    row('fuser GFLOP/s ÷ prefill GFLOP/s', '—',
      (b) => `${b.ratios.fuserEfficiencyOverPrefill}× (${b.ratios.fuserGflops} / ${b.ratios.receiverPrefillGflops})`),
    row('C2C ÷ receiver', `${p.c2cOverReceiver}×`, (b) => `${b.ratios.c2cOverReceiver}×`),
    row('text relay ÷ C2C', `${p.textRelayOverC2C}×`, (b) => `${b.ratios.textRelayOverC2C}×`),
  ].join('\n');
}
