/**
 * Program plumbing in the style of onnxruntime-web's JSEP: a `ProgramInfo` is a labelled WGSL source plus
 * the cache key of the parameters that generated it; shapes travel in uniforms, so one pipeline serves every
 * sequence length. `PipelineCache` compiles each key once (labelled shader module + pipeline);
 * `encodeDispatches` turns a list of dispatch records into one compute pass with all uniforms in one buffer.
 */

export interface ProgramInfo {
  /** Label of the shader module and pipeline (also the profiler key). */
  name: string;
  /** Derived only from the parameters that generate `source`; equal keys ⇔ equal shaders. */
  cacheKey: string;
  source: string;
}

/** One dispatch: which program, its uniform words, its storage bindings, and the grid. */
export interface DispatchRecord {
  program: ProgramInfo;
  /** Packed uniform struct (≤ UNIFORM_BYTES bytes), bound at @binding(0). */
  uniforms: ArrayBuffer;
  /** Storage buffers by binding number (≥ 1). */
  bindings: { binding: number; buffer: GPUBuffer }[];
  groups: [number, number, number];
}

/** Every program's uniform struct fits in 16 words. */
export const UNIFORM_BYTES = 64;

/** Builds a 16-word uniform block from named u32/f32 fields in declaration order. */
export function packUniforms(fields: { u32?: number; f32?: number }[]): ArrayBuffer {
  if (fields.length * 4 > UNIFORM_BYTES) throw new RangeError(`uniform block has ${fields.length} words, max ${UNIFORM_BYTES / 4}`);
  const buf = new ArrayBuffer(UNIFORM_BYTES);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  fields.forEach((field, i) => {
    if (field.f32 !== undefined) f[i] = field.f32;
    else u[i] = (field.u32 ?? 0) >>> 0;
  });
  return buf;
}

const perDevice = new WeakMap<GPUDevice, PipelineCache>();

export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(private readonly device: GPUDevice) {}

  /** The cache shared by every fuser on `device`: a pipeline is compiled once per device, not per fuser. */
  static forDevice(device: GPUDevice): PipelineCache {
    let c = perDevice.get(device);
    if (!c) {
      c = new PipelineCache(device);
      perDevice.set(device, c);
    }
    return c;
  }

  get size(): number {
    return this.pipelines.size;
  }

  has(program: ProgramInfo): boolean {
    return this.pipelines.has(program.cacheKey);
  }

  /** Synchronous path used while encoding; `warm` should have compiled everything beforehand. */
  get(program: ProgramInfo): GPUComputePipeline {
    let p = this.pipelines.get(program.cacheKey);
    if (!p) {
      p = this.device.createComputePipeline(this.descriptor(program));
      this.pipelines.set(program.cacheKey, p);
    }
    return p;
  }

  /** Compiles every not-yet-cached program asynchronously (the "compiling shaders" phase). */
  async warm(programs: ProgramInfo[]): Promise<void> {
    const todo = new Map<string, ProgramInfo>();
    for (const p of programs) if (!this.pipelines.has(p.cacheKey)) todo.set(p.cacheKey, p);
    const built = await Promise.all(
      [...todo.values()].map(async (p) => [p.cacheKey, await this.device.createComputePipelineAsync(this.descriptor(p))] as const),
    );
    for (const [key, pipeline] of built) this.pipelines.set(key, pipeline);
  }

  private descriptor(program: ProgramInfo): GPUComputePipelineDescriptor {
    const module = this.device.createShaderModule({ label: program.name, code: program.source });
    return { label: program.name, layout: 'auto', compute: { module, entryPoint: 'main' } };
  }
}

/**
 * Encodes `records` into one compute pass of `encoder`. Returns the uniform buffer, which the caller
 * destroys once the submission has completed. WebGPU orders dispatches of one pass (each dispatch is its
 * own usage scope), so a record may read what an earlier one wrote.
 */
export function encodeDispatches(
  device: GPUDevice,
  cache: PipelineCache,
  encoder: GPUCommandEncoder,
  records: DispatchRecord[],
  label = 'c2c.fuser',
): GPUBuffer | null {
  if (records.length === 0) return null;
  const stride = Math.max(UNIFORM_BYTES, device.limits.minUniformBufferOffsetAlignment);
  const uniforms = device.createBuffer({
    label: `${label}.uniforms`,
    size: stride * records.length,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const staging = new Uint8Array(stride * records.length);
  records.forEach((r, i) => staging.set(new Uint8Array(r.uniforms), i * stride));
  device.queue.writeBuffer(uniforms, 0, staging);

  const pass = encoder.beginComputePass({ label });
  records.forEach((r, i) => {
    const pipeline = cache.get(r.program);
    const bindGroup = device.createBindGroup({
      label: r.program.name,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniforms, offset: i * stride, size: UNIFORM_BYTES } },
        ...r.bindings.map((b) => ({ binding: b.binding, resource: { buffer: b.buffer } })),
      ],
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(r.groups[0], r.groups[1], r.groups[2]);
  });
  pass.end();
  return uniforms;
}
