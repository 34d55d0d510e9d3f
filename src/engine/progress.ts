/**
 * Aggregates raw load events of every model and the fuser into one ProgressEvent stream: phases only move
 * forward (download → compile → warmup), and within a phase `progress` never decreases. Download progress is
 * bytes over all files seen so far (model files and fuser files alike, each event also carrying its own file's
 * bytes and whether the cache served it); compile and warm-up count finished units, and are shown only once every
 * unit has finished downloading (a 1 GB fuser download outlasts a model's compile).
 */
import type { RawProgressEvent, LoadPhase, ProgressEvent } from '../types';

const PHASES: LoadPhase[] = ['download', 'compile', 'warmup'];

export class ProgressAggregator {
  private readonly files = new Map<string, { loaded: number; total: number }>();
  private readonly done = { compile: new Set<string>(), warmup: new Set<string>() };
  private phase = 0;
  private last = 0;
  /** Furthest phase reported while some unit was still downloading (shown once none is). */
  private pending = 0;

  /** `units`: how many models (plus the fuser) report compile (= their downloads are done) and warm-up. */
  constructor(
    private readonly units: number,
    private readonly emit: (e: ProgressEvent) => void,
  ) {}

  report(e: RawProgressEvent): void {
    const idx = PHASES.indexOf(e.phase);
    if (idx < this.phase) return; // a late event of an earlier phase changes nothing visible
    if (e.phase === 'download') {
      const key = `${e.role}/${e.file ?? ''}`;
      const prev = this.files.get(key);
      const file = { loaded: Math.max(prev?.loaded ?? 0, e.loaded), total: Math.max(prev?.total ?? 0, e.total) };
      this.files.set(key, file);
      let loaded = 0;
      let total = 0;
      for (const f of this.files.values()) {
        loaded += f.loaded;
        total += f.total;
      }
      const cached = e.cached !== undefined ? { cached: e.cached } : {};
      this.emitAt(0, loaded, total, { model: e.role, file: e.file, fileLoaded: file.loaded, fileTotal: file.total, ...cached });
      return;
    }
    this.done[e.phase].add(e.role);
    // A unit reports compile once its downloads are done; until every unit has, another (the fuser, the other
    // model) may still be downloading: keep showing the download and show this once they all are.
    this.pending = Math.max(this.pending, idx);
    if (this.done.compile.size < this.units) return;
    // Show every phase held back so far with its count (compile 3/3, then warm-up), or just this event.
    for (let i = Math.max(1, this.phase); i <= this.pending; i++) if (i > this.phase || i === idx) this.emitCount(i, e.role);
  }

  private emitCount(idx: number, role: RawProgressEvent['role']): void {
    const phase = PHASES[idx] as 'compile' | 'warmup';
    this.emitAt(idx, this.done[phase].size, this.units, { model: role }, role);
  }

  private emitAt(idx: number, loaded: number, total: number, extra: Partial<ProgressEvent>, role = extra.model ?? 'receiver'): void {
    this.advanceTo(idx, role);
    // A file seen later grows the total: the fraction may drop, the reported progress holds (and the event still shows).
    const progress = Math.max(this.last, total > 0 ? Math.min(1, loaded / total) : 0);
    this.last = progress;
    this.emit({ phase: PHASES[idx], loaded, total, progress, ...extra });
  }

  /** Closes every phase up to `idx` with a final 100% event so consumers see each phase finish. */
  private advanceTo(idx: number, role: RawProgressEvent['role']): void {
    while (this.phase < idx) {
      if (this.last < 1) this.emit({ phase: PHASES[this.phase], loaded: 1, total: 1, progress: 1, model: role });
      this.phase++;
      this.last = 0;
    }
  }

  /** Called when everything is loaded: finishes the remaining phases. */
  finish(): void {
    this.advanceTo(PHASES.length - 1, 'receiver');
    if (this.last < 1) {
      this.last = 1;
      this.emit({ phase: 'warmup', loaded: this.units, total: this.units, progress: 1 });
    }
  }
}
