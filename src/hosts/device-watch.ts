/**
 * Device loss as a typed error: once the host's GPUDevice is lost (driver reset, OOM kill, `destroy()`), every
 * call in flight and every later call fails with DeviceLostError instead of hanging on a dead device or
 * surfacing whatever the runtime threw. The engine then reloads the pair into fresh workers (src/engine/browser.ts).
 */
import { DeviceLostError } from '../errors';

export class DeviceWatch {
  private info: { reason: string; message: string } | null = null;
  private readonly lostError: Promise<never>;

  constructor(device: GPUDevice | undefined) {
    let fail: (e: DeviceLostError) => void = () => undefined;
    this.lostError = new Promise<never>((_, reject) => (fail = reject));
    this.lostError.catch(() => undefined); // observed through guard()
    void device?.lost.then((i) => {
      this.info = { reason: i.reason ?? 'unknown', message: i.message ?? '' };
      fail(this.error());
    });
  }

  get isLost(): boolean {
    return this.info !== null;
  }

  private error(cause?: unknown): DeviceLostError {
    const i = this.info ?? { reason: 'unknown', message: '' };
    return new DeviceLostError(`the GPU device was lost (${i.reason})${i.message ? `: ${i.message}` : ''}`,
      { reason: i.reason }, { cause });
  }

  /** Runs `f` unless the device is lost; a loss while it runs rejects at once, and its own failure after a loss is a loss. */
  async guard<T>(f: () => Promise<T>): Promise<T> {
    if (this.info) throw this.error();
    try {
      return await Promise.race([f(), this.lostError]);
    } catch (e) {
      if (this.info && !(e instanceof DeviceLostError)) throw this.error(e);
      throw e;
    }
  }
}
