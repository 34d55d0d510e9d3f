/**
 * comlink transfer handlers shared by the engine and its workers (install on both sides):
 *  - 'throw': errors keep their class (FuserFormatError, AbortError, …) across the boundary via
 *    serializeError / deserializeError (comlink alone keeps only name/message/stack).
 *  - 'abort-signal': an AbortSignal becomes a MessagePort; aborting on one side aborts a mirror signal on the other.
 */
import { transferHandlers, type TransferHandler } from 'comlink';
import { deserializeError, serializeError, type SerializedError } from '../errors';

interface ThrownWire {
  isError: boolean;
  value: SerializedError | unknown;
}

function makeThrowHandler(builtin: TransferHandler<unknown, unknown>): TransferHandler<{ value: unknown }, ThrownWire> {
  return {
  // comlink marks thrown values with a private symbol: reuse its own test.
  canHandle: (v): v is { value: unknown } => builtin.canHandle(v),
  serialize({ value }) {
    if (value instanceof Error) return [{ isError: true, value: serializeError(value) }, []];
    return [{ isError: false, value }, []];
  },
  deserialize(w) {
    throw w.isError ? deserializeError(w.value as SerializedError) : w.value;
  },
  };
}

const abortHandler: TransferHandler<AbortSignal, MessagePort> = {
  canHandle: (v): v is AbortSignal => typeof AbortSignal !== 'undefined' && v instanceof AbortSignal,
  serialize(signal) {
    const { port1, port2 } = new MessageChannel();
    const send = () => {
      port1.postMessage({ reason: signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted') });
      port1.close();
    };
    if (signal.aborted) send();
    else signal.addEventListener('abort', send, { once: true });
    return [port2, [port2]];
  },
  deserialize(port) {
    const ctl = new AbortController();
    port.onmessage = (e: MessageEvent<{ reason: string }>) => {
      ctl.abort(new Error(e.data?.reason ?? 'aborted'));
      port.close();
    };
    port.start();
    return ctl.signal;
  },
};

let installed = false;

/** Registers both handlers on this side of the boundary (idempotent). */
export function installTransferHandlers(): void {
  if (installed) return;
  installed = true;
  // comlink's built-in 'throw' handler is replaced: it would flatten our classes to plain Errors.
  const builtin = transferHandlers.get('throw')!;
  transferHandlers.set('throw', makeThrowHandler(builtin) as unknown as TransferHandler<unknown, unknown>);
  transferHandlers.set('abort-signal', abortHandler as unknown as TransferHandler<unknown, unknown>);
}
