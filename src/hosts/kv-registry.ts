/**
 * The KV caches a host keeps between calls (prefill → fuse → generate), under numeric handles. An entry holds
 * our CPU cache (`kv`) or, on the single-worker WebGPU path, the model's GPU-resident `present.*` tensors.
 * Handles are consumed by generate and released explicitly otherwise; GPU tensors are disposed on release.
 */
import type { Tensor } from '@huggingface/transformers';
import { InvalidInputError } from '../errors';
import type { KVCache, ModelRole } from '../types';
import { disposeTensors } from '../models/causal-lm';

export interface KeptKV {
  role: ModelRole;
  kv?: KVCache;
  present?: Record<string, Tensor>;
  seq: number;
  /** Attention mask over the kept tokens (padded cross-tokenizer prefixes); absent = all ones. */
  mask?: number[];
}

export class KVRegistry {
  private readonly entries = new Map<number, KeptKV>();
  private next = 1;

  keep(entry: KeptKV): number {
    const handle = this.next++;
    this.entries.set(handle, entry);
    return handle;
  }

  /** The entry of `handle`, which must belong to `role`. */
  get(handle: number, role: ModelRole): KeptKV {
    const k = this.entries.get(handle);
    if (!k || k.role !== role) throw new InvalidInputError(`unknown ${role} KV handle ${handle}`, { field: 'handle', actual: handle });
    return k;
  }

  /** Like get(), and the handle is gone afterwards (the caller owns the entry). */
  take(handle: number, role: ModelRole): KeptKV {
    const k = this.get(handle, role);
    this.entries.delete(handle);
    return k;
  }

  release(handle: number): void {
    disposeTensors(this.entries.get(handle)?.present);
    this.entries.delete(handle);
  }

  /** Live handles (a leak check for tests and the host's own bookkeeping). */
  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    for (const k of this.entries.values()) disposeTensors(k.present);
    this.entries.clear();
  }
}
