/**
 * Load progress (one real progress bar per phase: download, compile, warm-up, fed by the engine's
 * ProgressEvents) and the device report (backend, adapter, shader-f16, fuser backend, the models' and the fuser's
 * fallback reasons).
 */
import type { DeviceReport, LoadPhase, ProgressEvent } from '../types';
import { h } from './dom';

const PHASES: { phase: LoadPhase; label: string }[] = [
  { phase: 'download', label: 'Download' },
  { phase: 'compile', label: 'Compile' },
  { phase: 'warmup', label: 'Warm-up' },
];

function fmtAmount(phase: LoadPhase, loaded: number, total: number): string {
  if (phase === 'download' && total > 1024) return `${(loaded / 1e6).toFixed(1)} / ${(total / 1e6).toFixed(1)} MB`;
  return total > 0 ? `${loaded} / ${total}` : '';
}

export class LoadPanel {
  private bars = new Map<LoadPhase, { bar: HTMLProgressElement; text: HTMLElement }>();

  constructor(private container: HTMLElement) {
    this.reset();
  }

  reset(): void {
    this.container.replaceChildren();
    for (const { phase, label } of PHASES) {
      const id = `progress-${phase}`;
      const bar = h('progress', { id, max: 1, value: 0 }) as HTMLProgressElement;
      const text = h('span', { class: 'progress-text' }, 'pending');
      this.container.append(h('div', { class: 'progress-row', 'data-phase': phase }, h('label', { for: id }, label), bar, text));
      this.bars.set(phase, { bar, text });
    }
  }

  update(e: ProgressEvent): void {
    const order = PHASES.findIndex((p) => p.phase === e.phase);
    // Reaching a phase means the earlier ones are complete.
    PHASES.slice(0, order).forEach(({ phase }) => this.complete(phase));
    const b = this.bars.get(e.phase);
    if (!b) return;
    b.bar.value = Math.min(1, Math.max(b.bar.value, e.progress));
    const what = [e.model, e.file].filter(Boolean).join(' · ');
    b.text.textContent = `${Math.round(100 * b.bar.value)}% ${fmtAmount(e.phase, e.loaded, e.total)}${what ? ` — ${what}` : ''}`;
  }

  complete(phase: LoadPhase): void {
    const b = this.bars.get(phase);
    if (!b || b.bar.value >= 1) return;
    b.bar.value = 1;
    b.text.textContent = '100%';
  }

  completeAll(): void {
    PHASES.forEach(({ phase }) => this.complete(phase));
  }
}

export function renderDeviceReport(d: DeviceReport): HTMLElement {
  const rows: [string, string][] = [['LLM backend', d.backend]];
  if (d.adapter) {
    const a = d.adapter;
    rows.push(['WebGPU adapter', [a.vendor, a.architecture, a.description].filter(Boolean).join(' / ') || '(no info)']);
    if (a.isFallbackAdapter || a.architecture === 'swiftshader') {
      rows.push(['Note', 'fallback adapter (SwiftShader is a CPU rasterizer): timings are not GPU numbers']);
    }
  }
  rows.push(['shader-f16', d.shaderF16 ? 'yes' : 'no']);
  for (const role of ['receiver', 'sharer'] as const) {
    const m = d.models?.[role];
    if (m) rows.push([`${role[0].toUpperCase()}${role.slice(1)} dtype`, `${m.modelDType} (KV ${m.kvDType})`]);
  }
  rows.push(['Fuser backend', d.fuserBackend]);
  rows.push(['Topology', d.topology]);
  if (d.fallbackReason) rows.push(['Fallback reason', d.fallbackReason]);
  if (d.fuserFallbackReason) rows.push(['Fuser fallback reason', d.fuserFallbackReason]);
  return h('dl', { class: 'device-report', 'data-testid': 'device-report' }, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}
