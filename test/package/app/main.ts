/**
 * A fresh app using the installed package, as README.md tells npm users: the embedded pair copied from
 * node_modules/c2c-web/models/ into public/models/, the browser engine on wasm. Exposes `window.c2c` for the test.
 */
import { createC2CEngine, type C2CEngine, type DeviceReport } from 'c2c-web';

export interface AppApi {
  device: DeviceReport;
  c2c(user: string, maxNewTokens: number): Promise<number[]>;
}

declare global {
  interface Window {
    c2c: Promise<AppApi>;
  }
}

async function start(): Promise<AppApi> {
  const engine: C2CEngine = await createC2CEngine({
    receiver: { id: 'c2c-tiny/receiver', localPath: '/models/' },
    sharer: { id: 'c2c-tiny/sharer', localPath: '/models/' },
    fuser: '/models/c2c-tiny/fuser/',
    device: 'wasm',
  });
  document.getElementById('out')!.textContent = `ready on ${engine.device.backend}`;
  return {
    device: engine.device,
    async c2c(user, maxNewTokens) {
      const r = await engine.generate([{ role: 'user', content: user }], { mode: 'c2c', maxNewTokens });
      return r.tokenIds;
    },
  };
}

window.c2c = start();
