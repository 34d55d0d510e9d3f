/**
 * Picks the engine factory: the real `createC2CEngine` from the package, or — only with the dev flag
 * `?engine=fake` — the fake engine used to test the UI itself.
 */
import type { C2CEngine, EngineOptions } from '../types';
import { ModelLoadError } from '../errors';

export type EngineKind = 'real' | 'fake';
export type EngineFactory = (opts: EngineOptions) => Promise<C2CEngine>;

export function engineKindFromUrl(search: string): EngineKind {
  return new URLSearchParams(search).get('engine') === 'fake' ? 'fake' : 'real';
}

export async function loadEngineFactory(kind: EngineKind): Promise<EngineFactory> {
  if (kind === 'fake') {
    const { createFakeEngineForUiTests } = await import('./dev/fake-engine');
    return createFakeEngineForUiTests;
  }
  // Typed loosely on purpose: the factory is looked up at runtime so a build without it fails loudly here.
  const mod = (await import('..')) as unknown as Record<string, unknown>;
  const create = mod.createC2CEngine;
  if (typeof create !== 'function') {
    throw new ModelLoadError('this build of c2c-web has no createC2CEngine export (engine not built yet)', { field: 'createC2CEngine' });
  }
  return create as EngineFactory;
}
