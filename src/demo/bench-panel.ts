/**
 * The "run benchmark" panel: runs N eval items in every mode on the loaded engine and draws the results
 * table, an accuracy chart and a latency chart.
 */
import type { C2CEngine, GenerationMode } from '../types';
import { runBenchmark, type BenchRun } from './bench-core';
import { accuracyChart, latencyChart } from './charts';
import { byId, h } from './dom';
import type { EvalItem } from './eval-set';
import type { ReferenceAccuracy } from './reference';
import { ratioLines, resultsTable } from './report';

export interface BenchContext {
  engine: C2CEngine;
  items: EvalItem[];
  pair: string;
  engineKind: 'real' | 'fake';
  reference: ReferenceAccuracy;
  maxNewTokens: number;
  relayMaxTokens?: number;
}

export class BenchPanel {
  private abort: AbortController | null = null;
  private readonly runBtn = byId<HTMLButtonElement>('bench-run');
  private readonly cancelBtn = byId<HTMLButtonElement>('bench-cancel');
  private readonly count = byId<HTMLInputElement>('bench-n');
  private readonly progress = byId<HTMLProgressElement>('bench-progress');
  private readonly status = byId('bench-status');
  private readonly out = byId('bench-out');

  constructor(private getContext: () => BenchContext | null, private modes: () => GenerationMode[]) {
    this.runBtn.addEventListener('click', () => void this.run().catch(() => {}));
    this.cancelBtn.addEventListener('click', () => this.abort?.abort());
  }

  setEnabled(on: boolean, itemCount = 0): void {
    this.runBtn.disabled = !on;
    if (itemCount) {
      this.count.max = String(itemCount);
      if (Number(this.count.value) > itemCount) this.count.value = String(itemCount);
    }
  }

  /** Runs the benchmark; `limit`/`modes` override the form (automation). Rejects on failure or cancel. */
  async run(limit?: number, modes?: GenerationMode[]): Promise<BenchRun> {
    const ctx = this.getContext();
    if (!ctx) throw new Error('load a pair first');
    const n = Math.max(1, Math.min(ctx.items.length, limit ?? (Number(this.count.value) || 1)));
    this.abort = new AbortController();
    this.runBtn.disabled = true;
    this.cancelBtn.disabled = false;
    this.progress.value = 0;
    this.status.textContent = `running ${n} items…`;
    try {
      const run = await runBenchmark(ctx.engine, ctx.items.slice(0, n), { pair: ctx.pair, engineKind: ctx.engineKind }, {
        modes: modes ?? this.modes(),
        maxNewTokens: ctx.maxNewTokens,
        relayMaxTokens: ctx.relayMaxTokens,
        signal: this.abort.signal,
        onResult: (_r, done, total) => {
          this.progress.value = done / total;
          this.status.textContent = `${done} / ${total} generations`;
        },
      });
      this.show(run, ctx.reference, ctx.items.length);
      this.status.textContent = `done: ${n} items in ${(run.wallMs / 1000).toFixed(1)} s`;
      return run;
    } catch (e) {
      this.status.textContent = `benchmark stopped: ${e instanceof Error ? e.message : String(e)}`;
      throw e;
    } finally {
      this.runBtn.disabled = false;
      this.cancelBtn.disabled = true;
      this.abort = null;
    }
  }

  /** `fullSetSize`: the whole eval set, so a subset is never compared with the full-set PyTorch accuracy. */
  show(run: BenchRun, ref: ReferenceAccuracy, fullSetSize?: number): void {
    const warn = run.engineKind === 'fake' ? h('p', { class: 'warn' },
      'FAKE ENGINE: simulated numbers for UI testing, not results.') : null;
    this.out.replaceChildren(
      ...(warn ? [warn] : []),
      resultsTable(run, ref, fullSetSize),
      h('ul', { class: 'ratios' }, ...ratioLines(run).map((l) => h('li', {}, l))),
      h('div', { class: 'charts' }, h('figure', {}, accuracyChart(run.summaries, ref)), h('figure', {}, latencyChart(run.summaries))),
    );
  }
}
