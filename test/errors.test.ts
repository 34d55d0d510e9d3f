import { describe, expect, it } from 'vitest';
import { AbortError, C2CError, FuserFormatError, ShapeMismatchError, deserializeError, serializeError,
  throwIfAborted } from '../src/errors';

describe('errors', () => {
  it('keep class, name, code and details across a structured-clone round trip', () => {
    const err = new FuserFormatError('hidden_dim must be a positive integer', { field: 'hidden_dim', actual: -1 });
    const wire = structuredClone(serializeError(err));
    const back = deserializeError(wire);
    expect(back).toBeInstanceOf(FuserFormatError);
    expect(back).toBeInstanceOf(C2CError);
    expect(back.name).toBe('FuserFormatError');
    expect((back as FuserFormatError).code).toBe('FUSER_FORMAT');
    expect((back as FuserFormatError).details).toEqual({ field: 'hidden_dim', actual: -1 });
    expect(back.message).toBe(err.message);
  });

  it('turn unknown errors into plain Errors with the same name', () => {
    const back = deserializeError(serializeError(new TypeError('boom')));
    expect(back).not.toBeInstanceOf(C2CError);
    expect(back.name).toBe('TypeError');
    expect(back.message).toBe('boom');
  });

  it('throwIfAborted throws AbortError only once aborted', () => {
    const ctl = new AbortController();
    expect(() => throwIfAborted(ctl.signal)).not.toThrow();
    ctl.abort();
    expect(() => throwIfAborted(ctl.signal)).toThrow(AbortError);
    expect(new ShapeMismatchError('x').code).toBe('SHAPE_MISMATCH');
  });
});
