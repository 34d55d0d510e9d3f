/**
 * The progress aggregator with fuser files: a fuser download that outlasts the models' downloads stays visible
 * (compile is shown only once every unit, the fuser included, has finished downloading), each event carries its
 * own file's bytes and whether the cache served it, and the totals count model and fuser bytes together.
 */
import { describe, expect, it } from 'vitest';
import { ProgressAggregator } from '../../src/engine/progress';
import type { ProgressEvent } from '../../src/types';

describe('progress with fuser files', () => {
  it('keeps showing the fuser download while the models compile, with per-file bytes', () => {
    const ev: ProgressEvent[] = [];
    const agg = new ProgressAggregator(3, (e) => ev.push(e));
    agg.report({ role: 'sharer', phase: 'download', file: 'onnx/model.onnx', loaded: 100, total: 100 });
    agg.report({ role: 'receiver', phase: 'download', file: 'onnx/model.onnx', loaded: 200, total: 200 });
    agg.report({ role: 'sharer', phase: 'compile', loaded: 1, total: 1 });
    agg.report({ role: 'receiver', phase: 'compile', loaded: 1, total: 1 });
    agg.report({ role: 'receiver', phase: 'warmup', loaded: 1, total: 1 });
    // The fuser's files arrive after both models compiled and one warmed up.
    agg.report({ role: 'fuser', phase: 'download', file: 'final/projector_0.pt', loaded: 0, total: 1000, cached: false });
    agg.report({ role: 'fuser', phase: 'download', file: 'final/projector_0.pt', loaded: 1000, total: 1000, cached: false });
    agg.report({ role: 'fuser', phase: 'download', file: 'final/projector_1.pt', loaded: 1000, total: 1000, cached: true });
    agg.report({ role: 'fuser', phase: 'compile', loaded: 1, total: 1 });
    agg.report({ role: 'sharer', phase: 'warmup', loaded: 1, total: 1 });
    agg.report({ role: 'fuser', phase: 'warmup', loaded: 1, total: 1 });
    agg.finish();

    const phases = ev.map((e) => e.phase);
    expect(phases.indexOf('compile')).toBeGreaterThan(phases.lastIndexOf('download'));
    const fuser = ev.filter((e) => e.model === 'fuser' && e.phase === 'download');
    expect(fuser.map((e) => [e.file, e.fileLoaded, e.fileTotal, e.cached])).toEqual([
      ['final/projector_0.pt', 0, 1000, false],
      ['final/projector_0.pt', 1000, 1000, false],
      ['final/projector_1.pt', 1000, 1000, true],
    ]);
    expect(fuser.at(-1)).toMatchObject({ loaded: 2300, total: 2300, progress: 1 });
    // The receiver's own compile/warm-up counted, not lost: compile shows all three units at once.
    expect(ev.find((e) => e.phase === 'compile')).toMatchObject({ loaded: 3, total: 3 });
    for (let i = 1; i < ev.length; i++) if (ev[i].phase === ev[i - 1].phase) expect(ev[i].progress).toBeGreaterThanOrEqual(
      ev[i - 1].progress);
    expect(ev.filter((e) => e.progress === 1 && e.phase === 'warmup').length).toBeGreaterThan(0);
  });
});
