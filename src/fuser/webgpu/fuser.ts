/**
 * `createWebGPUFuser`: the C2C fuser on WebGPU. Weights are uploaded once; every call fuses the whole cache
 * (all receiver layers, K and V, each with its mapped sharer layer) in one command-encoder submission, in
 * token chunks sized from the device limits. Closed gates skip their path (output = copy of the receiver).
 * Outputs are handed back only after the submission completed without error or device loss.
 * Weight matrices are stored in the kernel dtype or as int8 (`weightDType`, chosen automatically when the
 * loaded weights carry `quant`); activations and accumulation never go below the kernel dtype / f32.
 * KV keeps its dtype: float16 KV is uploaded / bound as f16 bytes (native `array<f16>` with shader-f16, else u32
 * words unpacked in the kernel: wgsl.ts `KVStore`) and the fused output is the receiver's dtype.
 *
 * @example
 *   const fuser = await createWebGPUFuser(weights, { device });
 *   const fused = await fuser.fuse(receiverKV, sharerKV);              // Float32Array in/out
 *   const gpuFused = await fuser.fuseBuffers(recvBufs, sharerBufs, seq); // GPUBuffers in/out, same device
 */
import { C2CError, DeviceLostError, DisposedError, InvalidInputError, MemoryBudgetError, WebGPUUnavailableError,
  throwIfAborted } from '../../errors';
import type { KVCache, KVDType, KVTensor, FuseOptions, Fuser, FuserConfig, FuserWeights } from '../../types';
import { cacheDType, kvElementBytes } from '../../kv/ops';
import { acquireDevice, LossWatch, scopeFailure } from './device';
import { createGemmProgram } from './gemm';
import { PipelineCache, encodeDispatches, type DispatchRecord } from './program';
import { createRowRmsProgram } from './row-rms';
import { pathGemmVariants, pathRecords, type GemmFormat, type Scratch } from './path-plan';
import { uploadWeights, type PackedWeights } from './weights';
import { allQuantized, checkDTypeOptions, validateGpuKV, validateSeqRange, type GpuKV, type GpuLayerKV } from './validate';
import { checkCacheShapes } from '../reference-checks';
import { PATHS, checkFuserWeights, maxInnerDim } from '../shapes';
import { PACKED_4X8_FEATURE, dtypeBytes, type KVStore, type KernelDType, type WeightDType } from './wgsl';

export type { GpuKV, GpuLayerKV } from './validate';

export interface WebGPUFuserOptions {
  /** Use this device (e.g. the one given to onnxruntime-web); otherwise one is requested with the adapter's limits. */
  device?: GPUDevice;
  /** Kernel storage dtype; default 'f16' when the device has `shader-f16`, else 'f32'. Accumulation is always f32. */
  dtype?: KernelDType;
  /** Upper bound on tokens per chunk (the device limits may impose a smaller one). */
  maxChunkTokens?: number;
  /**
   * Upper bound on one weight buffer's size (default and ceiling: the device's storage binding limit); a path never
   * straddles two buffers.
   */
  maxWeightBufferBytes?: number;
  /**
   * Storage of the Linear weight matrices: 'int8' (packed 4 per u32 + per-row f32 scales, ≈½ of f16) or the
   * kernel dtype. Default: 'int8' when every Linear of the weights carries `quant` (an int8 fuser file or
   * `quantizeFuserWeights`), else the kernel dtype. 'int8' on float weights quantises them on upload.
   */
  weightDType?: WeightDType;
  /** WGSL language features (default `navigator.gpu.wgslLanguageFeatures`); `packed_4x8_integer_dot_product` enables `unpack4xI8`. */
  wgslLanguageFeatures?: ReadonlySet<string>;
  /**
   * How float16 KV is bound: 'native' (`array<f16>`, needs shader-f16) or 'packed' (f16 pairs in u32 words,
   * `unpack2x16float` / `pack2x16float`, core WGSL). Default: native when the device has shader-f16, else packed.
   */
  f16KV?: 'native' | 'packed';
}

/** fuseBuffers options: the dtypes of the GPU KV (default float32); the output has the receiver's dtype. */
export interface GpuFuseOptions extends FuseOptions {
  receiverDType?: KVDType;
  sharerDType?: KVDType;
}

export interface WebGPUFuser extends Fuser {
  readonly backend: 'webgpu';
  readonly device: GPUDevice;
  readonly dtype: KernelDType;
  /** Storage of the Linear weight matrices on the GPU. */
  readonly weightDType: WeightDType;
  /** Tokens per chunk actually used. */
  readonly chunkTokens: number;
  /** Bytes of uploaded weights, and how many buffers hold them. */
  readonly weightBytes: number;
  readonly weightBuffers: number;
  /** How float16 KV is bound on this device (see WebGPUFuserOptions.f16KV). */
  readonly f16KV: 'native' | 'packed';
  /**
   * GPU-resident fusion: outputs are fresh `[heads, seq, head_dim]` buffers in the receiver's dtype
   * (STORAGE|COPY_SRC|COPY_DST) that the caller owns.
   */
  fuseBuffers(receiver: GpuKV, sharer: GpuKV, seq: number, opts?: GpuFuseOptions): Promise<GpuKV>;
}

/** Default chunk cap: keeps scratch at ≤ 16 MiB per buffer for hidden 1024 in f32. */
const DEFAULT_CHUNK_TOKENS = 4096;

export async function createWebGPUFuser(weights: FuserWeights, options: WebGPUFuserOptions = {}): Promise<WebGPUFuser> {
  checkFuserWeights(weights);
  const wd = options.weightDType;
  const floatWd = checkDTypeOptions(options);
  const askedDType = options.dtype ?? floatWd;
  const { device, owned } = await acquireDevice(options.device, askedDType !== 'f32');
  const hasF16 = device.features.has('shader-f16');
  const dtype: KernelDType = askedDType ?? (hasF16 ? 'f16' : 'f32');
  const weightDType: WeightDType = wd === 'int8' || (wd === undefined && allQuantized(weights)) ? 'int8' : dtype;
  const features = options.wgslLanguageFeatures ?? (globalThis as {
    navigator?: { gpu?: { wgslLanguageFeatures?: ReadonlySet<string> } } }).navigator?.gpu?.wgslLanguageFeatures;
  if (options.f16KV === 'native' && !hasF16) {
    if (owned) device.destroy();
    throw new WebGPUUnavailableError("f16KV 'native' needs the 'shader-f16' device feature, which this device lacks",
      { field: 'f16KV', feature: 'shader-f16' });
  }
  const f16KV = options.f16KV ?? (hasF16 ? 'native' : 'packed');
  const format: GemmFormat = weightDType === 'int8' ? { weights: 'int8',
    unpack: features?.has(PACKED_4X8_FEATURE) ? 'builtin' : 'bits' } : {};
  if (dtype === 'f16' && !hasF16) {
    if (owned) device.destroy();
    throw new WebGPUUnavailableError("dtype 'f16' needs the 'shader-f16' device feature, which this device lacks",
      { field: 'dtype', feature: 'shader-f16' });
  }
  try {
    return await WebGPUFuserImpl.create(device, owned, weights, dtype, weightDType, format, f16KV, options.maxChunkTokens,
      options.maxWeightBufferBytes);
  } catch (e) {
    if (owned) device.destroy();
    throw e;
  }
}

class WebGPUFuserImpl implements WebGPUFuser {
  readonly backend = 'webgpu' as const;
  private disposed = false;
  private readonly loss: LossWatch;

  private constructor(
    readonly device: GPUDevice,
    private readonly owned: boolean,
    readonly config: FuserConfig,
    readonly dtype: KernelDType,
    readonly weightDType: WeightDType,
    private readonly format: GemmFormat,
    readonly f16KV: 'native' | 'packed',
    readonly chunkTokens: number,
    private readonly packed: PackedWeights,
    private readonly cache: PipelineCache,
  ) {
    this.loss = new LossWatch(device);
  }

  static async create(
    device: GPUDevice,
    owned: boolean,
    weights: FuserWeights,
    dtype: KernelDType,
    weightDType: WeightDType,
    format: GemmFormat,
    f16KV: 'native' | 'packed',
    maxChunk?: number,
    maxWeightBuffer?: number,
  ): Promise<WebGPUFuserImpl> {
    const cfg = weights.config;
    const limits = device.limits;
    const maxBinding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    const rowBytes = Math.max(cfg.hiddenDim, maxInnerDim(cfg)) * dtypeBytes(dtype);
    const chunk = Math.min(Math.floor(maxBinding / rowBytes), limits.maxComputeWorkgroupsPerDimension, maxChunk ?? DEFAULT_CHUNK_TOKENS);
    if (chunk < 1) {
      throw new MemoryBudgetError(`one token row (${rowBytes} bytes) exceeds the device's storage binding limit (${maxBinding})`);
    }
    device.pushErrorScope('out-of-memory');
    let packed: PackedWeights | undefined;
    let uploadError: unknown;
    try {
      packed = uploadWeights(device, weights, weightDType, Math.min(maxBinding, maxWeightBuffer ?? Infinity));
    } catch (e) {
      uploadError = e;
    }
    const oom = await device.popErrorScope(); // popped on every path: never leave our scope on a caller's device
    if (!packed) throw uploadError;
    if (oom) {
      packed.buffers.forEach((b) => b.destroy());
      throw new MemoryBudgetError(`uploading ${packed.bytes} bytes of fuser weights failed: ${oom.message}`, { actual: packed.bytes });
    }
    const cache = PipelineCache.forDevice(device);
    try {
      await cache.warm([...pathGemmVariants(cfg, dtype, format).map(createGemmProgram), createRowRmsProgram({ dtype })]);
    } catch (e) {
      packed.buffers.forEach((b) => b.destroy());
      throw e;
    }
    return new WebGPUFuserImpl(device, owned, cfg, dtype, weightDType, format, f16KV, chunk, packed, cache);
  }

  get weightBytes(): number {
    return this.packed.bytes;
  }

  get weightBuffers(): number {
    return this.packed.buffers.length;
  }

  async fuse(receiver: KVCache, sharer: KVCache, opts: FuseOptions = {}): Promise<KVCache> {
    this.checkUsable();
    throwIfAborted(opts.signal);
    const seq = checkCacheShapes(this.config, receiver, sharer);
    const range = validateSeqRange(seq, opts.start, opts.end);
    const { device } = this;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const uploaded: GPUBuffer[] = [];
    // The tensor's own bytes (f16 KV stays 2 bytes per value); sizes rounded to 16 for copies and packed reads.
    const upload = (t: KVTensor): GPUBuffer => {
      const b = device.createBuffer({ label: 'c2c.fuser.kv-in', size: Math.max(16, Math.ceil(t.data.byteLength / 16) * 16), usage,
        mappedAtCreation: true });
      new Uint8Array(b.getMappedRange(0, t.data.byteLength)).set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      b.unmap();
      uploaded.push(b);
      return b;
    };
    // Upload only what open paths read; closed paths are copied on the CPU.
    const recvBufs: Partial<GpuLayerKV>[] = receiver.map(() => ({}));
    const sharBufs: Partial<GpuLayerKV>[] = sharer.map(() => ({}));
    this.packed.layers.forEach((layer, l) => {
      for (const p of PATHS) {
        if (!layer[p]) continue;
        recvBufs[l][p] = upload(receiver[l][p]);
        const j = this.config.layerMap[l];
        sharBufs[j][p] ??= upload(sharer[j][p]);
      }
    });
    const kv = { receiver: cacheDType(receiver), sharer: cacheDType(sharer) };
    try {
      const data = await this.run(recvBufs as GpuKV, sharBufs as GpuKV, seq, range, kv, 'readback');
      throwIfAborted(opts.signal);
      return receiver.map((layer, l) => {
        const out = (p: 'key' | 'value'): KVTensor => {
          const t = layer[p];
          const bytes = data.get(`${l}.${p}`);
          if (!bytes) return { ...t, data: t.data.slice() } as KVTensor;
          return kv.receiver === 'float16'
            ? { dtype: 'float16', data: new Uint16Array(bytes), heads: t.heads, seq: t.seq, headDim: t.headDim }
            : { dtype: 'float32', data: new Float32Array(bytes), heads: t.heads, seq: t.seq, headDim: t.headDim };
        };
        return { key: out('key'), value: out('value') };
      });
    } finally {
      uploaded.forEach((b) => b.destroy());
    }
  }

  async fuseBuffers(receiver: GpuKV, sharer: GpuKV, seq: number, opts: GpuFuseOptions = {}): Promise<GpuKV> {
    this.checkUsable();
    throwIfAborted(opts.signal);
    const kv = { receiver: opts.receiverDType ?? 'float32', sharer: opts.sharerDType ?? 'float32' };
    validateGpuKV(this.config, receiver, sharer, seq, kv);
    const range = validateSeqRange(seq, opts.start, opts.end);
    const outputs: GpuKV = [];
    await this.run(receiver, sharer, seq, range, kv, 'buffers', outputs);
    if (opts.signal?.aborted) {
      outputs.forEach((o) => (o.key.destroy(), o.value.destroy()));
      throwIfAborted(opts.signal);
    }
    return outputs;
  }

  /**
   * Encodes and submits the whole cache. 'buffers': fills `outputs` with one fresh buffer per layer/path
   * (closed paths copied from the receiver). 'readback': only open paths, returned as `${layer}.${path}` → data.
   */
  private async run(
    receiver: GpuKV, sharer: GpuKV, seq: number, range: { start: number; end: number }, kv: { receiver: KVDType; sharer: KVDType },
    mode: 'buffers' | 'readback', outputs: GpuKV = [],
  ): Promise<Map<string, ArrayBuffer>> {
    const { device, config: cfg } = this;
    const store = (d: KVDType): KVStore => (d === 'float16' ? (this.f16KV === 'native' ? 'f16' : 'f16-packed') : 'f32');
    const format: GemmFormat = { ...this.format, sharerKV: store(kv.sharer), receiverKV: store(kv.receiver) };
    // f32 KV pipelines were compiled at creation; f16 ones are compiled on the first f16 call.
    await this.cache.warm(pathGemmVariants(cfg, this.dtype, format).map(createGemmProgram));
    const outBytes = cfg.receiver.kvHeads * seq * cfg.receiver.headDim * kvElementBytes(kv.receiver);
    // Copies and packed (u32) access need whole words: output sizes are rounded to 4 (buffers are made in 16s).
    const copyBytes = Math.ceil(outBytes / 4) * 4;
    const created: GPUBuffer[] = [];
    const temp: GPUBuffer[] = [];
    const make = (label: string, size: number, usage: number, list: GPUBuffer[]) => {
      const b = device.createBuffer({ label, size: Math.max(16, Math.ceil(size / 16) * 16), usage });
      list.push(b);
      return b;
    };
    const count = range.end - range.start;
    const rows = Math.min(this.chunkTokens, Math.max(count, 1));
    const act = dtypeBytes(this.dtype);
    const storage = GPUBufferUsage.STORAGE;
    const scratch: Scratch = {
      hidden: [0, 1, 2].map((i) => make(`c2c.fuser.hidden${i}`, rows * cfg.hiddenDim * act, storage, temp)) as Scratch['hidden'],
      inner: make('c2c.fuser.inner', rows * maxInnerDim(cfg) * act, storage, temp),
      headWeight: make('c2c.fuser.head-weight', rows * cfg.receiver.kvHeads * 4, storage, temp),
      invRms: make('c2c.fuser.inv-rms', rows * 4, storage, temp),
      rows,
    };
    const records: DispatchRecord[] = [];
    const encoder = device.createCommandEncoder({ label: 'c2c.fuser' });
    const readOrder: { key: string; buffer: GPUBuffer }[] = [];
    const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
    const outUsage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    let uniforms: GPUBuffer | null = null;
    const staging: GPUBuffer[] = [];

    let scopes: Promise<GPUError | null>[] = [];
    device.pushErrorScope('validation');
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('internal');
    try {
      this.packed.layers.forEach((layer, l) => {
        const pair: Partial<GpuLayerKV> = {};
        for (const p of PATHS) {
          const packedPath = layer[p];
          if (!packedPath && mode === 'readback') continue;
          const out = make(`c2c.fuser.out.${l}.${p}`, outBytes, outUsage, created);
          pair[p] = out;
          // Tokens outside [start, end) keep the receiver's values; closed gates keep all of them.
          if (!packedPath || count < seq) encoder.copyBufferToBuffer(receiver[l][p], 0, out, 0, copyBytes);
          if (packedPath) {
            readOrder.push({ key: `${l}.${p}`, buffer: out });
            const job = { path: packedPath, weights: this.packed.buffers[packedPath.buffer], sharer: sharer[cfg.layerMap[l]][p],
              receiver: receiver[l][p], out };
            for (let t0 = range.start; t0 < range.end; t0 += rows)
              records.push(...pathRecords(cfg, this.dtype, job, scratch, { seq, tok0: t0, count: Math.min(rows, range.end - t0) },
                maxGroups, format));
          }
        }
        if (mode === 'buffers') outputs.push(pair as GpuLayerKV);
      });
      uniforms = encodeDispatches(device, this.cache, encoder, records);
      // A mapped copy orders completion after the submission: in 'readback' it holds the results, in 'buffers'
      // a 4-byte sentinel proves the work finished before the device could be lost.
      // One staging buffer per output, so no single buffer outgrows maxBufferSize on long caches.
      const mapUsage = GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;
      if (mode === 'readback')
        for (const r of readOrder) {
          const st = make(`c2c.fuser.readback.${r.key}`, copyBytes, mapUsage, temp);
          encoder.copyBufferToBuffer(r.buffer, 0, st, 0, copyBytes);
          staging.push(st);
        }
      else {
        const st = make('c2c.fuser.sentinel', 4, mapUsage, temp);
        encoder.copyBufferToBuffer(created[created.length - 1], 0, st, 0, 4);
        staging.push(st);
      }
      device.queue.submit([encoder.finish()]);
    } catch (e) {
      // Nothing was submitted: release everything (an encode-time error is a bug or a bad shape).
      [...created, ...temp].forEach((b) => b.destroy());
      (uniforms as GPUBuffer | null)?.destroy();
      outputs.length = 0;
      throw e;
    } finally {
      scopes = [device.popErrorScope(), device.popErrorScope(), device.popErrorScope()];
    }

    let failure: unknown;
    const result = new Map<string, ArrayBuffer>();
    try {
      await Promise.race([Promise.all(staging.map((b) => b.mapAsync(GPUMapMode.READ))), this.loss.lost.then((i) => Promise.reject(i))]);
      failure = scopeFailure((await Promise.all(scopes)).filter((e): e is GPUError => e !== null));
      if (failure === undefined && mode === 'readback') {
        readOrder.forEach((r, i) => result.set(r.key, staging[i].getMappedRange(0, copyBytes).slice(0, outBytes)));
      }
    } catch (e) {
      failure = e;
    }
    if (failure === undefined && (await this.loss.settle(0))) failure = new Error('device lost');
    uniforms?.destroy();
    temp.forEach((b) => b.destroy());
    if (mode === 'readback') created.forEach((b) => b.destroy());
    if (failure !== undefined) {
      created.forEach((b) => b.destroy());
      outputs.length = 0;
      if (failure instanceof C2CError) throw failure;
      if (this.loss.info || (await this.loss.settle(1000))) {
        const { reason, message } = this.loss.info ?? {};
        const text = `GPU device lost during fusion (${reason ?? 'unknown'}): ${message ?? ''}`.trim();
        throw new DeviceLostError(text, { reason }, { cause: failure });
      }
      throw new DeviceLostError(`GPU work did not complete: ${(failure as Error)?.message ?? failure}`, {}, { cause: failure });
    }
    return result;
  }

  private checkUsable(): void {
    if (this.disposed) throw new DisposedError('this WebGPU fuser has been disposed');
    if (this.loss.info) throw new DeviceLostError(`the fuser's GPU device was lost (${this.loss.info.reason}): ${this.loss.info.message}`,
      { reason: this.loss.info.reason });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.packed.buffers.forEach((b) => b.destroy());
    if (this.owned) this.device.destroy();
  }
}
