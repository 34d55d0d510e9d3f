/**
 * Test-only instrumentation of a model worker's globals, evaluated before the real worker module
 * (instrumented.worker.ts imports it first). It counts every GPUBuffer created on any device of the worker (ORT's
 * and the WebGPU fuser's) until destroyed (and those the GC collected without destroy); records
 * every WebAssembly.Memory (onnxruntime-web's wasm heap, created in JS for its threaded build, exported otherwise);
 * and, with the flag `fail-fuser-pipelines` in the worker's name, makes pipeline creation of the WebGPU fuser's programs
 * (labels `c2c.*`; ORT's never start so) fail, as a shader that does not compile on a device would.
 */

export interface GpuBufferStats {
  /** Created and not destroyed. A buffer the GC collected without destroy() still counts: GPU memory must be
   *  freed explicitly (the GC sees a small wrapper and is not driven by GPU memory). */
  live: number;
  liveBytes: number;
  /** Live buffers by label prefix (up to the second '.', '' for unlabelled). */
  byLabel: Record<string, { count: number; bytes: number }>;
  created: number;
  destroyed: number;
  /** Of the live ones: collected by the GC without destroy(). */
  collected: number;
  /** The live buffers created after the `since` id given to gpuBufferStats (id, size, usage flags, label). */
  newer: { id: number; size: number; usage: number; label: string }[];
}

// Flags travel in the worker's name ('c2c-models;flag;…'), not its URL: a query string would make the worker
// chunk a second module instance when its own split chunks import it back (a second, uninitialised host).
const flags = new Set((self as unknown as { name: string }).name.split(';').slice(1));
const live = new Map<number, { size: number; label: string; usage: number }>();
const ids = new WeakMap<GPUBuffer, number>();
const counts = { created: 0, destroyed: 0, collected: 0 };
const collectedWithoutDestroy = new FinalizationRegistry<number>((id) => {
  if (live.has(id)) counts.collected++;
});

const createBuffer = GPUDevice.prototype.createBuffer;
GPUDevice.prototype.createBuffer = function (this: GPUDevice, desc: GPUBufferDescriptor): GPUBuffer {
  const buf = createBuffer.call(this, desc);
  const id = ++counts.created;
  ids.set(buf, id);
  live.set(id, { size: desc.size, label: desc.label ?? '', usage: desc.usage });
  collectedWithoutDestroy.register(buf, id, buf);
  return buf;
};
const destroy = GPUBuffer.prototype.destroy;
GPUBuffer.prototype.destroy = function (this: GPUBuffer): undefined {
  const id = ids.get(this);
  if (id !== undefined && live.delete(id)) {
    counts.destroyed++;
    collectedWithoutDestroy.unregister(this);
  }
  return destroy.call(this);
};

export function gpuBufferStats(since = Infinity): GpuBufferStats {
  const byLabel: GpuBufferStats['byLabel'] = {};
  const newer: GpuBufferStats['newer'] = [];
  let liveBytes = 0;
  for (const [id, { size, label, usage }] of live) {
    if (id > since) newer.push({ id, size, usage, label });
    const key = label.split('.').slice(0, 2).join('.');
    const e = (byLabel[key] ??= { count: 0, bytes: 0 });
    e.count++;
    e.bytes += size;
    liveBytes += size;
  }
  return { live: live.size, liveBytes, byLabel, ...counts, newer };
}

const memories: WeakRef<WebAssembly.Memory>[] = [];
const NativeMemory = WebAssembly.Memory;
const RecordedMemory = function (this: unknown, desc: WebAssembly.MemoryDescriptor) {
  const m = new NativeMemory(desc);
  memories.push(new WeakRef(m));
  return m;
} as unknown as typeof WebAssembly.Memory;
RecordedMemory.prototype = NativeMemory.prototype;
WebAssembly.Memory = RecordedMemory;
const recordExports = (instance: WebAssembly.Instance) => {
  for (const v of Object.values(instance.exports)) if (v instanceof NativeMemory) memories.push(new WeakRef(v));
};
const { instantiate, instantiateStreaming } = WebAssembly;
WebAssembly.instantiate = async function (...args: Parameters<typeof instantiate>) {
  const r = (await instantiate.apply(WebAssembly, args)) as WebAssembly.Instance | WebAssembly.WebAssemblyInstantiatedSource;
  recordExports(r instanceof WebAssembly.Instance ? r : r.instance);
  return r;
} as typeof instantiate;
WebAssembly.instantiateStreaming = async function (...args: Parameters<typeof instantiateStreaming>) {
  const r = await instantiateStreaming.apply(WebAssembly, args);
  recordExports(r.instance);
  return r;
};

/** Current byte sizes of every live wasm memory of this worker (a wasm heap only grows). */
export function wasmMemoryBytes(): number[] {
  const seen = new Set<WebAssembly.Memory>();
  for (const ref of memories) {
    const m = ref.deref();
    if (m) seen.add(m);
  }
  return [...seen].map((m) => m.buffer.byteLength);
}

if (flags.has('fail-fuser-pipelines')) {
  const { createComputePipelineAsync } = GPUDevice.prototype;
  GPUDevice.prototype.createComputePipelineAsync = function (this: GPUDevice, desc: GPUComputePipelineDescriptor) {
    if (desc.label?.startsWith('c2c.')) return Promise.reject(new Error(`planted test failure: pipeline '${desc.label}' does not compile`));
    return createComputePipelineAsync.call(this, desc);
  };
}
