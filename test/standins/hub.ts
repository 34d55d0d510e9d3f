/**
 * The Hub preset path of the engine suites on the reduced stand-ins (engine-node, engine-browser): a Hub mirror
 * over the CI set with a temporary transformers.js model store, and the options a Hub user passes for a preset
 * with that mirror as the Hub.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { env } from '@huggingface/transformers';
import { findPreset, presetEngineOptions, type PairPreset } from '../../src/presets';
import { serveHubMirror, type HubMirror } from '../../src/standins/hub-mirror';
import type { Flavour } from '../../src/standins/flavours';
import type { EngineOptions, FuserLocation } from '../../src/types';
import { CI_STANDINS, ciStandins } from './helpers';

export const QWEN = findPreset('qwen3-0.6b+qwen2.5-0.5b')!;
export const LLAMA = findPreset('qwen3-0.6b+llama3.2-1b')!;
export const HUB_MESSAGES = [{ role: 'user' as const, content: 'What is the capital of France? Answer in one word.' }];
export const KV_TYPE: Record<Flavour, string> = { fp32: 'float32', fp16: 'float16', q8: 'float32' };

export interface HubFixture {
  hub: HubMirror;
  /** transformers.js's env.cacheDir while the fixture is open (Node keeps remote model files on disk). */
  cacheDir: string;
  close(): Promise<void>;
}

/** Serves the CI stand-ins as a Hub and points env.cacheDir at an empty temporary store until close(). */
export async function openHubFixture(): Promise<HubFixture> {
  const hub = await serveHubMirror((await ciStandins()).root);
  const saved = env.cacheDir;
  const cacheDir = mkdtempSync(join(tmpdir(), 'c2c-hub-cache-'));
  env.cacheDir = cacheDir;
  return {
    hub,
    cacheDir,
    close: async () => {
      env.cacheDir = saved;
      await hub.close();
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

/** What a Hub user passes for `preset`, with `hubUrl` as the Hub, `dtype` files and the stand-ins' sharer depth. */
export function hubOptions(hubUrl: string, preset: PairPreset, dtype: Flavour, extra: Partial<EngineOptions> = {}): EngineOptions {
  const base = presetEngineOptions(preset, { remoteHost: hubUrl, cache: false, ...extra });
  return {
    ...base,
    receiver: { ...base.receiver, dtype },
    sharer: { ...base.sharer, dtype },
    fuser: { ...(base.fuser as FuserLocation), sharerNumLayers: CI_STANDINS.layers },
  };
}
