/**
 * Inline-SVG charts for benchmark results: accuracy per mode (with the PyTorch reference as a marker) and
 * mean latency per mode as stacked stage bars with a p90 tick. Styles are inline attributes so the SVG's
 * outerHTML is self-contained and can be pasted into the standalone HTML report.
 */
import type { GenerationMode } from '../types';
import type { ModeSummary } from './bench-core';
import { fmtMs, svg } from './dom';
import { MODE_COLORS, MODE_LABELS, STAGES } from './stages';

const W = 640, LABEL_W = 170, ROW_H = 34, TOP = 34, RIGHT = 70;
const TEXT = { 'font-family': 'system-ui, sans-serif', 'font-size': 12, fill: '#1d2430' };

type LegendEntry = { label: string; color: string; marker?: boolean };

function frame(title: string, rows: number, legend: LegendEntry[]): SVGSVGElement {
  const height = TOP + rows * ROW_H + 34;
  const root = svg('svg', { viewBox: `0 0 ${W} ${height}`, width: '100%', role: 'img', 'aria-label': title,
    xmlns: 'http://www.w3.org/2000/svg' });
  root.append(svg('rect', { x: 0, y: 0, width: W, height, fill: '#ffffff' }));
  const t = svg('text', { x: 8, y: 20, 'font-family': 'system-ui, sans-serif', 'font-size': 14, 'font-weight': 600,
    fill: '#1d2430' }, title);
  root.append(t);
  let x = 8;
  const ly = height - 12;
  for (const l of legend) {
    root.append(l.marker
      ? svg('rect', { x, y: ly - 10, width: 3, height: 12, fill: l.color })
      : svg('rect', { x, y: ly - 9, width: 10, height: 10, fill: l.color }));
    const label = svg('text', { x: x + 14, y: ly, 'font-family': 'system-ui, sans-serif', 'font-size': 11, fill: '#1d2430' }, l.label);
    root.append(label);
    x += 22 + l.label.length * 6;
  }
  return root;
}

function rowLabel(root: SVGSVGElement, y: number, mode: GenerationMode): void {
  root.append(svg('text', { ...TEXT, x: LABEL_W - 8, y: y + ROW_H / 2 + 4, 'text-anchor': 'end' }, MODE_LABELS[mode]));
}

function valueText(root: SVGSVGElement, x: number, y: number, text: string): void {
  root.append(svg('text', { x, y: y + ROW_H / 2 + 4, 'font-family': 'system-ui, sans-serif', 'font-size': 11, fill: '#1d2430' }, text));
}

/** Accuracy per mode; `reference` (PyTorch) is drawn as a dark tick on each bar. */
export function accuracyChart(summaries: ModeSummary[], reference: Partial<Record<GenerationMode, number>> = {}): SVGSVGElement {
  const hasRef = summaries.some((s) => reference[s.mode] !== undefined);
  const legend: LegendEntry[] = [{ label: 'measured accuracy (bar colour = mode)', color: '#3aa170' }];
  if (hasRef) legend.push({ label: 'PyTorch report', color: '#111111', marker: true });
  const root = frame('Accuracy per mode', summaries.length, legend);
  const plotW = W - LABEL_W - RIGHT;
  summaries.forEach((s, i) => {
    const y = TOP + i * ROW_H;
    rowLabel(root, y, s.mode);
    root.append(svg('rect', { x: LABEL_W, y: y + 6, width: plotW, height: ROW_H - 12, fill: '#eef1f4' }));
    const acc = Number.isFinite(s.accuracy) ? s.accuracy : 0;
    root.append(svg('rect', { x: LABEL_W, y: y + 6, width: acc * plotW, height: ROW_H - 12, fill: MODE_COLORS[s.mode] }));
    const ref = reference[s.mode];
    if (ref !== undefined) root.append(svg('rect', { x: LABEL_W + ref * plotW - 1.5, y: y + 2, width: 3, height: ROW_H - 4,
      fill: '#111111' }));
    valueText(root, LABEL_W + plotW + 6, y, `${(100 * acc).toFixed(1)}%`);
  });
  return root;
}

/** Mean latency per mode as stacked stages; a tick marks p90. */
export function latencyChart(summaries: ModeSummary[]): SVGSVGElement {
  const legend: LegendEntry[] = STAGES.map((s) => ({ label: s.label.replace(/ \(.*\)/, ''), color: s.color }));
  legend.push({ label: 'p90', color: '#111111', marker: true });
  const root = frame('Mean latency per mode (stacked stages)', summaries.length, legend);
  const plotW = W - LABEL_W - RIGHT;
  const max = Math.max(1e-6, ...summaries.map((s) => Math.max(s.meanMs, s.p90Ms)));
  summaries.forEach((s, i) => {
    const y = TOP + i * ROW_H;
    rowLabel(root, y, s.mode);
    let x = LABEL_W;
    for (const st of STAGES) {
      const w = ((s.stages[st.key] || 0) / max) * plotW;
      if (w <= 0) continue;
      root.append(svg('rect', { x, y: y + 6, width: w, height: ROW_H - 12, fill: st.color }));
      x += w;
    }
    const rest = (s.meanMs / max) * plotW - (x - LABEL_W);
    if (rest > 0.5) root.append(svg('rect', { x, y: y + 6, width: rest, height: ROW_H - 12, fill: '#9aa3ad' }));
    root.append(svg('rect', { x: LABEL_W + (s.p90Ms / max) * plotW - 1, y: y + 2, width: 2, height: ROW_H - 4, fill: '#111111' }));
    valueText(root, LABEL_W + plotW + 6, y, fmtMs(s.meanMs));
  });
  return root;
}
