/**
 * The pairs the demo offers: the embedded tiny pair served from `/models/` (offline) and Hub pairs for
 * online use. A pair is unusable — and shown disabled with the reason — when it needs the network while
 * offline, or when no fuser exists for it.
 */
import type { EngineOptions, ModelSource } from '../types';
import { HUB_PRESETS } from '../presets';
import { ModelLoadError } from '../errors';
import type { EvalItem } from './eval-set';

export interface PairEntry {
  id: string;
  label: string;
  kind: 'embedded' | 'hub';
  receiver: ModelSource;
  sharer: ModelSource;
  /** Folder URL with fuser.json + safetensors; null when no fuser is published for the pair. */
  fuser: string | null;
  /** Eval set (JSONL) used for the example questions and the benchmark. */
  evalUrl?: string;
  /** Generation settings the pair was evaluated with (PyTorch report): the benchmark uses the same. */
  maxNewTokens?: number;
  relayMaxTokens?: number;
  /** Items given inline instead of `evalUrl` (the fake UI-test pair only). */
  items?: EvalItem[];
  /** Training report (JSON) with the PyTorch accuracies per mode. */
  reportUrl?: string;
  note?: string;
  /** What each model knows, one sentence each (the embedded pair's `pair.json` `story`). */
  story?: { sharer: string; receiver: string };
}

/** Where the embedded pairs' manifests live (copied/served from the repo's `models/`). */
export const EMBEDDED_MANIFESTS = ['/models/c2c-tiny/pair.json'];

/** The paper's released pairs: Hub ONNX models; their official fusers must be converted before use. */
export const HUB_PAIRS: PairEntry[] = HUB_PRESETS.map((p) => ({
  id: `hub:${p.name}`,
  label: `${p.label} (Hub)`,
  kind: 'hub' as const,
  receiver: { id: p.receiver.id },
  sharer: { id: p.sharer.id },
  fuser: null,
  note: `Downloads the models from huggingface.co (hundreds of MB). The released fuser${p.fuser.kind === 'official' ? ` (${p.fuser.repo}/${p.fuser.folder})` : ''} `
    + 'must first be converted with `c2c-web convert` (docs/demo.md) and served at a URL entered below.',
}));

/** Only offered with `?engine=fake`: lets the UI be exercised without any model files. */
export const FAKE_PAIR: PairEntry = {
  id: 'fake:ui-test',
  label: 'FAKE pair (UI testing only)',
  kind: 'embedded',
  receiver: { id: 'fake/receiver' },
  sharer: { id: 'fake/sharer' },
  fuser: '/fake/fuser/',
  items: [
    { prompt: 'In which country does Bolan live?\nAnswer with one word.', answer: 'Norway', question: 'In which country does Bolan live?' },
    { prompt: 'Where does Kraiu work?\nAnswer with one word.', answer: 'airport', question: 'Where does Kraiu work?' },
    { prompt: 'In which country does Zoumis live?\nAnswer with one word.', answer: 'Japan', question: 'In which country does Zoumis live?' },
  ],
  story: { sharer: 'FAKE: the sharer knows the people.', receiver: 'FAKE: the receiver knows the countries.' },
  note: 'Simulated answers and timings.',
};

type Ref = string | { id?: string; path?: string; folder?: string; dir?: string; set?: string; dtype?: string };

function refPath(r: Ref | undefined, field: string, url: string): { path: string; dtype?: string } {
  if (typeof r === 'string') return { path: r };
  const p = r?.path ?? r?.folder ?? r?.dir ?? r?.set ?? r?.id;
  if (typeof p !== 'string') throw new ModelLoadError(`${url}: field "${field}" must name a folder`, { field });
  return { path: p, dtype: r?.dtype };
}

/**
 * Builds a PairEntry from an embedded `pair.json`. Model folders are resolved relative to the manifest,
 * and each model becomes a transformers.js local model id under the `/models/` root.
 */
export function pairFromManifest(manifest: Record<string, unknown>, manifestUrl: string, modelsRoot = '/models/'): PairEntry {
  const dir = new URL('.', new URL(manifestUrl, 'http://x')).pathname; // e.g. /models/c2c-tiny/
  const rel = (p: string) => new URL(p, 'http://x' + dir).pathname;
  const asSource = (field: string): ModelSource => {
    const { path, dtype } = refPath(manifest[field] as Ref | undefined, field, manifestUrl);
    const abs = rel(path.replace(/\/?$/, '/'));
    if (!abs.startsWith(modelsRoot)) throw new ModelLoadError(`${manifestUrl}: ${field} folder ${abs} is outside ${modelsRoot}`, { field });
    return { id: abs.slice(modelsRoot.length).replace(/\/$/, ''), localPath: modelsRoot, dtype: dtype ?? 'fp32' };
  };
  const fuser = refPath(manifest.fuser as Ref | undefined, 'fuser', manifestUrl).path;
  const evalRef = (manifest.eval ?? manifest.eval_set ?? manifest.evalSet) as Ref | undefined;
  const evalObj = (evalRef && typeof evalRef === 'object' ? evalRef : {}) as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === 'number' && v > 0 ? v : undefined);
  const name = typeof manifest.name === 'string' ? manifest.name : dir.split('/').filter(Boolean).pop() ?? 'embedded';
  return {
    id: `embedded:${name}`,
    label: `${name} (embedded, offline)`,
    kind: 'embedded',
    receiver: asSource('receiver'),
    sharer: asSource('sharer'),
    fuser: rel(fuser.replace(/\/?$/, '/')),
    evalUrl: evalRef === undefined ? undefined : rel(refPath(evalRef, 'eval', manifestUrl).path),
    maxNewTokens: num(evalObj.max_new_tokens),
    relayMaxTokens: num(evalObj.hint_max_tokens),
    reportUrl: typeof manifest.report === 'string' ? rel(manifest.report) : `${modelsRoot}report.json`,
    note: typeof manifest.description === 'string' ? manifest.description : undefined,
    story: storyOf(manifest.story),
  };
}

function storyOf(v: unknown): PairEntry['story'] {
  const o = (v && typeof v === 'object' ? v : {}) as Record<string, unknown>;
  return typeof o.sharer === 'string' && typeof o.receiver === 'string' ? { sharer: o.sharer, receiver: o.receiver } : undefined;
}

export async function loadEmbeddedPairs(signal?: AbortSignal): Promise<{ pairs: PairEntry[]; errors: string[] }> {
  const pairs: PairEntry[] = [];
  const errors: string[] = [];
  for (const url of EMBEDDED_MANIFESTS) {
    try {
      const res = await fetch(url, { signal });
      if (!res.ok) throw new ModelLoadError(`${url}: HTTP ${res.status} (is models/ served? see docs/demo.md)`, { field: 'pair.json' });
      pairs.push(pairFromManifest((await res.json()) as Record<string, unknown>, url));
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }
  return { pairs, errors };
}

/** Why a pair cannot be loaded right now, or null when it can. */
export function unavailableReason(p: PairEntry, online: boolean): string | null {
  if (p.kind === 'hub' && !online) return 'offline: Hub models need a network connection';
  if (!p.fuser) return 'no fuser for this pair: enter a fuser URL';
  return null;
}

export function engineOptionsFor(p: PairEntry, device: EngineOptions['device']): Omit<EngineOptions, 'onProgress' | 'signal'> {
  if (!p.fuser) throw new ModelLoadError(`pair ${p.id} has no fuser`, { field: 'fuser' });
  return { receiver: p.receiver, sharer: p.sharer, fuser: p.fuser, device, allowRemoteModels: p.kind === 'hub' };
}
