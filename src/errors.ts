/**
 * Named, typed errors for every user-facing failure. Each class has a stable `name` and `code`, so callers
 * can branch on them, and they survive a worker boundary through `serializeError` / `deserializeError`
 * (comlink alone keeps only name/message/stack of a plain Error).
 */

export type C2CErrorCode =
  | 'FUSER_FORMAT'
  | 'SAFETENSORS_FORMAT'
  | 'CHECKPOINT_FORMAT'
  | 'SHAPE_MISMATCH'
  | 'INVALID_INPUT'
  | 'WEBGPU_UNAVAILABLE'
  | 'DEVICE_LOST'
  | 'CONTEXT_OVERFLOW'
  | 'MODEL_LOAD'
  | 'MEMORY_BUDGET'
  | 'WORKER_CRASHED'
  | 'ABORTED'
  | 'DISPOSED';

/** Extra machine-readable facts an error may carry (the offending field, tensor, or limits). */
export interface C2CErrorDetails {
  field?: string;
  tensor?: string;
  expected?: unknown;
  actual?: unknown;
  [key: string]: unknown;
}

export class C2CError extends Error {
  readonly code: C2CErrorCode;
  readonly details: C2CErrorDetails;
  constructor(code: C2CErrorCode, message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
    this.name = new.target.name;
  }
}

/** fuser.json content is wrong: a field missing or invalid, a tensor missing or of the wrong shape. */
export class FuserFormatError extends C2CError {
  constructor(message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('FUSER_FORMAT', message, details, options);
  }
}

/** A .safetensors file is structurally broken (header, dtype, offsets, truncation). */
export class SafetensorsFormatError extends C2CError {
  constructor(message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('SAFETENSORS_FORMAT', message, details, options);
  }
}

/** An official C2C checkpoint (.pt zip/pickle, projector json) is broken, unsafe or does not match. */
export class CheckpointFormatError extends C2CError {
  constructor(message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('CHECKPOINT_FORMAT', message, details, options);
  }
}

/** KV tensors (or models) whose dims do not fit the fuser or each other. */
export class ShapeMismatchError extends C2CError {
  constructor(message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('SHAPE_MISMATCH', message, details, options);
  }
}

/** A caller argument is invalid (empty messages, seq 0, a bad option value). */
export class InvalidInputError extends C2CError {
  constructor(message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('INVALID_INPUT', message, details, options);
  }
}

export class WebGPUUnavailableError extends C2CError {
  constructor(message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('WEBGPU_UNAVAILABLE', message, details, options);
  }
}

export class DeviceLostError extends C2CError {
  constructor(message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('DEVICE_LOST', message, details, options);
  }
}

export class ContextOverflowError extends C2CError {
  constructor(message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('CONTEXT_OVERFLOW', message, details, options);
  }
}

export class ModelLoadError extends C2CError {
  constructor(message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('MODEL_LOAD', message, details, options);
  }
}

export class MemoryBudgetError extends C2CError {
  constructor(message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('MEMORY_BUDGET', message, details, options);
  }
}

export class WorkerCrashedError extends C2CError {
  constructor(message: string, details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('WORKER_CRASHED', message, details, options);
  }
}

/** Thrown when an AbortSignal fires; `name` is 'AbortError' like the DOM's. */
export class AbortError extends C2CError {
  constructor(message = 'The operation was aborted', details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('ABORTED', message, details, options);
  }
}

export class DisposedError extends C2CError {
  constructor(message = 'The engine has been disposed', details: C2CErrorDetails = {}, options?: { cause?: unknown }) {
    super('DISPOSED', message, details, options);
  }
}

const ERROR_CLASSES = {
  FuserFormatError,
  SafetensorsFormatError,
  CheckpointFormatError,
  ShapeMismatchError,
  InvalidInputError,
  WebGPUUnavailableError,
  DeviceLostError,
  ContextOverflowError,
  ModelLoadError,
  MemoryBudgetError,
  WorkerCrashedError,
  AbortError,
  DisposedError,
} as const;

// Minifiers rename classes; pin each class's `name` so `err.name` (set from new.target.name) and the
// worker-boundary lookup in deserializeError keep the real names in production builds.
Object.defineProperty(C2CError, 'name', { value: 'C2CError' });
for (const [name, Ctor] of Object.entries(ERROR_CLASSES)) Object.defineProperty(Ctor, 'name', { value: name });

export type C2CErrorName = keyof typeof ERROR_CLASSES;

/** Plain-data form of an error, safe for structured clone across workers. */
export interface SerializedError {
  name: string;
  message: string;
  code?: C2CErrorCode;
  details?: C2CErrorDetails;
  stack?: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof C2CError) {
    return { name: err.name, message: err.message, code: err.code, details: safeDetails(err.details), stack: err.stack };
  }
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: 'Error', message: String(err) };
}

/** Rebuilds the original class when the name is one of ours; otherwise a plain Error with the same name. */
export function deserializeError(data: SerializedError): Error {
  const Ctor = (ERROR_CLASSES as Record<string, new (m: string, d?: C2CErrorDetails) => C2CError>)[data.name];
  const err: Error = Ctor ? new Ctor(data.message, data.details ?? {}) : Object.assign(new Error(data.message), { name: data.name });
  if (data.stack) err.stack = data.stack;
  return err;
}

function safeDetails(details: C2CErrorDetails): C2CErrorDetails {
  try {
    return structuredClone(details);
  } catch {
    return JSON.parse(JSON.stringify(details, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))) as C2CErrorDetails;
  }
}

/** Throws AbortError if the signal has fired. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortError(reasonText(signal.reason));
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? 'The operation was aborted' : String(reason);
}
