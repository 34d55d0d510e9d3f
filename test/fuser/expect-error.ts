/** Shared assertion for the fuser-format tests: the call throws a FuserFormatError with this message and details. */
import { expect } from 'vitest';
import { FuserFormatError } from '../../src/errors';

export function expectFormatError(fn: () => unknown, match: RegExp, details: Record<string, unknown> = {}): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a FuserFormatError').toBeInstanceOf(FuserFormatError);
  expect((caught as Error).message).toMatch(match);
  expect((caught as FuserFormatError).details).toMatchObject(details);
}
