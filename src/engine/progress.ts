/**
 * Aggregates raw load events of every model and the fuser into one ProgressEvent stream: phases only move
 * forward (download → compile → warmup), and within a phase `progress` never decreases. Download progress is
 * bytes over all files seen so far; compile and warm-up count finished models.
 */
import type { RawProgressEvent, LoadPhase, ProgressEvent } from '../types';

const PHASES: LoadPhase[] = ['download', 'compile', 'warmup'];

export class ProgressAggregator {
  private readonly files = new Map<string, { loaded: number; total: number }>();
  private readonly done = { compile: new Set<string>(), warmup: new Set<string>() };
  private phase = 0;
  private last = 0;

  /** `units`: how many models (plus the fuser) report compile/warm-up. */
  constructor(
    private readonly units: number,
    private readonly emit: (e: ProgressEvent) => void,
  ) {}

  report(e: RawProgressEvent): void {
    const idx = PHASES.indexOf(e.phase);
    if (idx < this.phase) return; // a late event of an earlier phase changes nothing visible
    let loaded: number, total: number;
    if (e.phase === 'download') {
      const key = `${e.role}/${e.file ?? ''}`;
      const prev = this.files.get(key);
      this.files.set(key, { loaded: Math.max(prev?.loaded ?? 0, e.loaded), total: Math.max(prev?.total ?? 0, e.total) });
      loaded = 0;
      total = 0;
      for (const f of this.files.values()) {
        loaded += f.loaded;
        total += f.total;
      }
    } else {
      this.done[e.phase].add(e.role);
      loaded = this.done[e.phase].size;
      total = this.units;
    }
    this.advanceTo(idx, e);
    const progress = total > 0 ? Math.min(1, loaded / total) : 0;
    if (progress < this.last) return;
    this.last = progress;
    this.emit({ phase: PHASES[idx], loaded, total, progress, model: e.role, file: e.file });
  }

  /** Closes every phase up to `idx` with a final 100% event so consumers see each phase finish. */
  private advanceTo(idx: number, e: RawProgressEvent): void {
    while (this.phase < idx) {
      if (this.last < 1) this.emit({ phase: PHASES[this.phase], loaded: 1, total: 1, progress: 1, model: e.role });
      this.phase++;
      this.last = 0;
    }
  }

  /** Called when everything is loaded: finishes the remaining phases. */
  finish(): void {
    this.advanceTo(PHASES.length - 1, { role: 'receiver', phase: 'warmup', loaded: 1, total: 1 });
    if (this.last < 1) {
      this.last = 1;
      this.emit({ phase: 'warmup', loaded: this.units, total: this.units, progress: 1 });
    }
  }
}
