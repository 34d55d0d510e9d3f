/**
 * A stacked horizontal bar of one generation's stage timings (sharer prefill, relay, receiver prefill,
 * fuse, decode, other). Bars of different columns share one scale so their lengths compare directly.
 */
import type { TimingBreakdown } from '../types';
import { fmtMs, h } from './dom';
import { STAGES, otherMs } from './stages';

export function renderTimingBar(t: Omit<TimingBreakdown, 'device'>, scaleMs: number): HTMLElement {
  const scale = Math.max(scaleMs, t.totalMs, 1e-6);
  const parts = STAGES.filter((s) => t[s.key] > 0).map((s) => ({ label: s.label, color: s.color, ms: t[s.key] }));
  const other = otherMs(t);
  if (other > 0.05 * t.totalMs) parts.push({ label: 'other', color: '#9aa3ad', ms: other });
  const summary = parts.map((p) => `${p.label} ${fmtMs(p.ms)}`).join(', ');
  const track = h('div', { class: 'tbar-track', role: 'img', 'aria-label': `Timing: total ${fmtMs(t.totalMs)}; ${summary}` });
  for (const p of parts) {
    track.append(h('span', {
      class: 'tbar-seg',
      style: `width:${((100 * p.ms) / scale).toFixed(2)}%;background:${p.color}`,
      title: `${p.label}: ${fmtMs(p.ms)}`,
    }));
  }
  const legend = h('ul', { class: 'tbar-legend' }, ...parts.map((p) =>
    h('li', {}, h('span', { class: 'swatch', style: `background:${p.color}` }), `${p.label} ${fmtMs(p.ms)}`)));
  return h('div', { class: 'tbar' }, track, legend);
}
