/**
 * Benchmark result views: the summary table (accuracy vs PyTorch, mean/p50/p90 latency, TTFT, tok/s, the
 * device), the accuracy gains and latency ratios beside the paper's (paper-reference.mjs), and a standalone
 * HTML report with the same table and charts.
 */
import type { DeviceReport } from '../types';
import type { BenchRun } from './bench-core';
import { accuracyMatches } from './accuracy-check.mjs';
import { accuracyChart, latencyChart } from './charts';
import { fmtMs, h } from './dom';
import { paperComparisonLines } from './paper-reference.mjs';
import type { ReferenceAccuracy } from './reference';
import { MODE_LABELS } from './stages';

export function describeDevice(d: DeviceReport): string {
  const a = d.adapter;
  const adapter = a
    ? `${[a.vendor, a.architecture, a.description].filter(Boolean).join('/')}${a.isFallbackAdapter ? ' (fallback adapter)' : ''}` : '';
  const sw = a && (a.architecture === 'swiftshader' || a.isFallbackAdapter) ? ' — SwiftShader is a CPU rasterizer, not a GPU' : '';
  const fallback = d.fallbackReason ? ` (fallback: ${d.fallbackReason})` : '';
  const fuserFallback = d.fuserFallbackReason ? ` (fuser fallback: ${d.fuserFallbackReason})` : '';
  const f16 = `shader-f16 ${d.shaderF16 ? 'yes' : 'no'}`;
  return `${d.backend}${adapter ? ` on ${adapter}` : ''}, fuser ${d.fuserBackend}, ${f16}, ${d.topology}${fallback}${fuserFallback}${sw}`;
}

/** Compares measured and reference accuracy on the full set (to the report's rounding), "subset" otherwise. */
export function accuracyMatch(run: BenchRun, mode: BenchRun['modes'][number], ref: ReferenceAccuracy, fullSetSize?: number): string {
  const r = ref[mode];
  const s = run.summaries.find((x) => x.mode === mode);
  if (r === undefined || !s) return '–';
  if (fullSetSize !== undefined && run.items < fullSetSize) return `subset (${run.items}/${fullSetSize})`;
  return accuracyMatches(s.accuracy, r) ? 'match' : 'MISMATCH';
}

/** Measured accuracy gains and latency ratios, with the device, beside the paper's figures. */
export function ratioLines(run: BenchRun): string[] {
  return paperComparisonLines(run);
}

export function resultsTable(run: BenchRun, ref: ReferenceAccuracy, fullSetSize?: number): HTMLTableElement {
  const head = ['Mode', 'Accuracy', 'PyTorch', 'vs PyTorch', 'Mean', 'p50', 'p90', 'TTFT', 'Decode tok/s'];
  const rows = run.summaries.map((s) => [
    MODE_LABELS[s.mode],
    `${(100 * s.accuracy).toFixed(1)}% (${s.correct}/${s.n})`,
    ref[s.mode] === undefined ? '–' : `${(100 * ref[s.mode]!).toFixed(1)}%`,
    accuracyMatch(run, s.mode, ref, fullSetSize),
    fmtMs(s.meanMs), fmtMs(s.p50Ms), fmtMs(s.p90Ms), fmtMs(s.meanTtftMs), s.meanDecodeTokPerS.toFixed(1),
  ]);
  return h('table', { class: 'results' },
    h('caption', {}, `${run.items} items × ${run.modes.length} modes, greedy, max ${run.maxNewTokens} new tokens${run.warmup ? ', after one untimed warm-up per mode' : ''} — ${describeDevice(run.device)}`),
    h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, h('th', { scope: 'row' }, r[0]),
      ...r.slice(1).map((c) => h('td', { class: c === 'MISMATCH' ? 'bad' : '' }, c))))));
}

const REPORT_CSS = `body{font-family:system-ui,sans-serif;color:#1d2430;margin:24px;max-width:1100px}
table{border-collapse:collapse;margin:12px 0;font-size:14px}th,td{border:1px solid #cfd6de;padding:4px 8px;text-align:right}
th[scope=row],thead th{text-align:left;background:#f3f5f8}caption{text-align:left;padding:4px 0;color:#4a5563}
.bad{color:#b3261e;font-weight:600}.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
.warn{background:#fff4d6;border:1px solid #e0b84a;padding:8px 12px}.run{margin-bottom:32px}`;

/** A self-contained HTML page for one or more runs (one per device). */
export function renderReportHtml(runs: BenchRun[], ref: ReferenceAccuracy, fullSetSize?: number, title = 'c2c-web benchmark'): string {
  const body = h('body', {}, h('h1', {}, title));
  for (const run of runs) {
    const sec = h('section', { class: 'run' }, h('h2', {}, `${run.pair} — ${run.device.backend}`));
    if (run.engineKind === 'fake') sec.append(h('p', { class: 'warn' }, 'FAKE ENGINE: simulated numbers for UI testing, not results.'));
    if (run.device.adapter?.isFallbackAdapter || run.device.adapter?.architecture === 'swiftshader') {
      sec.append(
        h('p', { class: 'warn' }, 'WebGPU here is SwiftShader, a CPU rasterizer: these WebGPU timings say nothing about GPU speed.'));
    }
    sec.append(resultsTable(run, ref, fullSetSize));
    sec.append(h('ul', {}, ...ratioLines(run).map((l) => h('li', {}, l)),
      h('li', {}, `started ${run.startedAt}, wall ${fmtMs(run.wallMs)}`)));
    sec.append(h('div', { class: 'charts' }, accuracyChart(run.summaries, ref), latencyChart(run.summaries)));
    body.append(sec);
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title><style>${REPORT_CSS}</style></head>${body.outerHTML}</html>`;
}
