/**
 * Demo entry: wires the pair picker, load panel, question box, answer columns and benchmark panel to a
 * C2C engine. URL flags: `?device=wasm|webgpu|auto`, `?topology=workers|single`, `?pair=<id>`, `?autoload=1`;
 * `?engine=fake` (UI tests only).
 * `window.c2cDemo` exposes the same actions to the e2e tests and the benchmark runner.
 */
import type { C2CEngine, GenerationMode, GenerationResult } from '../types';
import { AnswerColumns } from './answer-columns';
import { BenchPanel } from './bench-panel';
import type { BenchRun } from './bench-core';
import { byId, h } from './dom';
import { engineKindFromUrl, loadEngineFactory } from './engine-source';
import { fetchEvalSet, type EvalItem } from './eval-set';
import { LoadPanel, renderDeviceReport } from './load-panel';
import { engineOptionsFor, FAKE_PAIR, HUB_PAIRS, loadEmbeddedPairs, unavailableReason, type PairEntry } from './pairs';
import { fetchReferenceAccuracies, type ReferenceAccuracy } from './reference';
import { renderReportHtml } from './report';

type Device = 'auto' | 'webgpu' | 'wasm';
const params = new URLSearchParams(location.search);
const engineKind = engineKindFromUrl(location.search);

const ui = {
  pair: byId<HTMLSelectElement>('pair'),
  pairNote: byId('pair-note'),
  fuserRow: byId('fuser-row'),
  fuserUrl: byId<HTMLInputElement>('fuser-url'),
  device: byId<HTMLSelectElement>('device'),
  topology: byId<HTMLSelectElement>('topology'),
  load: byId<HTMLButtonElement>('load'),
  loadForm: byId<HTMLFormElement>('load-form'),
  askForm: byId<HTMLFormElement>('ask-form'),
  prompt: byId<HTMLTextAreaElement>('prompt'),
  run: byId<HTMLButtonElement>('run'),
  examples: byId('examples'),
  story: byId('story'),
  withSharer: byId<HTMLInputElement>('with-sharer'),
  maxNew: byId<HTMLInputElement>('max-new'),
  status: byId('status'),
  deviceInfo: byId('device-info'),
};

const loadPanel = new LoadPanel(byId('progress'));
const columns = new AnswerColumns(byId('answers'));
let pairs: PairEntry[] = [];
let engine: C2CEngine | null = null;
let loaded: { pair: PairEntry; items: EvalItem[]; reference: ReferenceAccuracy } | null = null;
let busy = false;

const setState = (s: 'idle' | 'loading' | 'ready' | 'running' | 'error') => { document.body.dataset.state = s; };
const say = (msg: string) => { ui.status.textContent = msg; };
const errMsg = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));
const modes = (): GenerationMode[] => ['receiver', 'text-relay', 'c2c', ...(ui.withSharer.checked ? ['sharer' as const] : [])];
const maxNew = () => Math.max(1, Math.min(256, Number(ui.maxNew.value) || 16));

const bench = new BenchPanel(
  () => (engine && loaded
    ? { engine, items: loaded.items, pair: loaded.pair.label, engineKind, reference: loaded.reference, maxNewTokens: maxNew(),
      relayMaxTokens: loaded.pair.relayMaxTokens }
    : null),
  modes,
);

function currentPair(): PairEntry | undefined {
  const p = pairs.find((x) => x.id === ui.pair.value);
  if (p && p.kind === 'hub' && ui.fuserUrl.value.trim()) return { ...p, fuser: ui.fuserUrl.value.trim() };
  return p;
}

function refreshPairNote(): void {
  const p = currentPair();
  ui.fuserRow.hidden = !p || p.kind !== 'hub';
  const reason = p ? unavailableReason(p, navigator.onLine) : 'no pair available';
  ui.pairNote.textContent = [p?.note, reason ? `Unavailable: ${reason}.` : ''].filter(Boolean).join(' ');
  ui.load.disabled = busy || reason !== null;
}

async function initPairs(): Promise<void> {
  // The fake engine must work without model files, so it doesn't even look for the embedded pairs.
  const { pairs: embedded, errors } = engineKind === 'fake' ? { pairs: [], errors: [] } : await loadEmbeddedPairs();
  pairs = [...(engineKind === 'fake' ? [FAKE_PAIR] : []), ...embedded, ...HUB_PAIRS];
  ui.pair.replaceChildren(...pairs.map((p) => {
    const reason = p.kind === 'hub' && !navigator.onLine ? ' — offline' : '';
    return h('option', { value: p.id }, p.label + reason);
  }));
  const wanted = params.get('pair');
  ui.pair.value = pairs.some((p) => p.id === wanted) ? wanted! : (pairs[0]?.id ?? '');
  if (errors.length) say(`Embedded pair unavailable: ${errors.join('; ')}`);
  refreshPairNote();
}

async function load(pairId?: string, device?: Device): Promise<void> {
  if (pairId) ui.pair.value = pairId;
  if (device) ui.device.value = device;
  const pair = currentPair();
  if (!pair) throw new Error('no pair selected');
  const reason = unavailableReason(pair, navigator.onLine);
  if (reason) throw new Error(reason);
  busy = true;
  ui.load.disabled = ui.run.disabled = ui.prompt.disabled = true;
  bench.setEnabled(false);
  setState('loading');
  loadPanel.reset();
  ui.deviceInfo.replaceChildren();
  say(`Loading ${pair.label}…`);
  try {
    await engine?.dispose();
    engine = null;
    const create = await loadEngineFactory(engineKind);
    const t0 = performance.now();
    const topology = ui.topology.value === 'single' ? 'single' : 'workers';
    engine = await create({ ...engineOptionsFor(pair, ui.device.value as Device), topology, onProgress: (e) => loadPanel.update(e) });
    loadPanel.completeAll();
    ui.deviceInfo.replaceChildren(h('h3', {}, 'Device'), renderDeviceReport(engine.device));
    const items = pair.items ?? (pair.evalUrl ? await fetchEvalSet(pair.evalUrl) : []);
    const reference = pair.reportUrl ? await fetchReferenceAccuracies(pair.reportUrl) : {};
    loaded = { pair, items, reference };
    // Default to the pair's evaluated generation length, so demo answers match the report.
    if (pair.maxNewTokens) ui.maxNew.value = String(pair.maxNewTokens);
    showStory(pair);
    showExamples(items);
    say(`Loaded ${pair.label} in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${engine.device.backend}.`);
    ui.prompt.disabled = false;
    ui.run.disabled = false;
    bench.setEnabled(items.length > 0, items.length);
    setState('ready');
  } catch (e) {
    setState('error');
    say(`Load failed — ${errMsg(e)}`);
    throw e;
  } finally {
    busy = false;
    refreshPairNote();
  }
}

function showExamples(items: EvalItem[]): void {
  // Spread over the set (neighbouring items often share a question in two answer formats).
  const step = Math.max(1, Math.floor(items.length / 4));
  const picks = [0, 1, 2, 3].map((k) => items[k * step + (k % 2)]).filter((x): x is EvalItem => !!x);
  ui.examples.replaceChildren(...picks.map((it, i) => {
    const label = (it.question ?? it.prompt.split('\n')[0]) + (it.type === 'mc' ? ` (options: ${it.options?.join(', ')})` : '')
      + ` → ${it.answer}`;
    const b = h('button', { type: 'button', class: 'example', 'data-index': i }, label);
    b.addEventListener('click', () => { ui.prompt.value = it.prompt; ui.prompt.focus(); });
    return b;
  }));
  if (!ui.prompt.value && picks[0]) ui.prompt.value = picks[0].prompt;
}

function showStory(pair: PairEntry): void {
  ui.story.hidden = !pair.story;
  if (pair.story) {
    ui.story.replaceChildren(h('strong', {}, 'What each model knows. '), `${pair.story.sharer} ${pair.story.receiver}`);
  }
}

/** Runs the question in each mode, one after another, streaming tokens into the columns. */
async function ask(text?: string, only?: GenerationMode[]): Promise<Record<string, GenerationResult>> {
  if (!engine) throw new Error('load a pair first');
  if (text !== undefined) ui.prompt.value = text;
  const content = ui.prompt.value.trim();
  if (!content) throw new Error('empty question');
  const run = only ?? modes();
  busy = true;
  ui.run.disabled = true;
  bench.setEnabled(false);
  setState('running');
  columns.reset(run, loaded?.items.find((it) => it.prompt.trim() === content) ?? null);
  const results: Record<string, GenerationResult> = {};
  try {
    for (const mode of run) {
      columns.start(mode);
      try {
        const relayMaxTokens = loaded?.pair.relayMaxTokens;
        for await (const ev of engine.stream([{ role: 'user', content }], { mode, maxNewTokens: maxNew(), relayMaxTokens })) {
          if (ev.type === 'token') columns.token(ev);
          else { columns.done(ev.result); results[mode] = ev.result; }
        }
      } catch (e) {
        columns.fail(mode, errMsg(e));
        throw e;
      }
    }
    say('Done.');
    setState('ready');
    return results;
  } catch (e) {
    say(`Generation failed — ${errMsg(e)}`);
    setState('error');
    throw e;
  } finally {
    busy = false;
    ui.run.disabled = false;
    bench.setEnabled((loaded?.items.length ?? 0) > 0);
  }
}

ui.loadForm.addEventListener('submit', (ev) => { ev.preventDefault(); void load().catch(() => {}); });
ui.askForm.addEventListener('submit', (ev) => { ev.preventDefault(); if (!ui.run.disabled) void ask().catch(() => {}); });
ui.prompt.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); ui.askForm.requestSubmit(); }
});
ui.pair.addEventListener('change', refreshPairNote);
ui.fuserUrl.addEventListener('input', refreshPairNote);
addEventListener('online', refreshPairNote);
addEventListener('offline', refreshPairNote);

if (engineKind === 'fake') {
  const b = byId('engine-banner');
  b.hidden = false;
  b.textContent = 'FAKE ENGINE (dev flag ?engine=fake): answers and timings are simulated for UI testing — not results.';
}
const dev = params.get('device');
if (dev === 'wasm' || dev === 'webgpu' || dev === 'auto') ui.device.value = dev;
const topo = params.get('topology');
if (topo === 'single' || topo === 'workers') ui.topology.value = topo;

const ready = initPairs().then(async () => {
  if (params.get('autoload') === '1') await load().catch(() => {});
});

declare global {
  interface Window { c2cDemo: unknown }
}
/** Automation surface for e2e tests and `npm run bench` (same code paths as the buttons). */
window.c2cDemo = {
  ready,
  engineKind,
  pairs: () => pairs.map((p) => ({ id: p.id, kind: p.kind, label: p.label, available: unavailableReason(p, navigator.onLine) === null })),
  load,
  ask,
  device: () => engine?.device ?? null,
  evalItems: () => loaded?.items ?? [],
  reference: () => loaded?.reference ?? {},
  bench: (limit?: number, modes?: GenerationMode[]) => bench.run(limit, modes),
  reportHtml: (runs: BenchRun[], fullSetSize?: number, reference?: ReferenceAccuracy) =>
    renderReportHtml(runs, reference ?? loaded?.reference ?? {}, fullSetSize),
};
