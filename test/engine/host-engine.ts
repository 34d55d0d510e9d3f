/**
 * A Node engine on the shipped pair over a ModelHost the test holds (createNodeC2CEngine hides its host): tests
 * read `host.keptHandles`, or route the engine's calls through a `view` of the host (a fault-injecting proxy).
 */
import path from 'node:path';
import { assembleEngine } from '../../src/engine/assemble';
import { ModelHost } from '../../src/hosts/model-host';
import { nodePlatform } from '../../src/hosts/node-platform';
import type { C2CEngine, HostApi } from '../../src/types';
import type { TestPair } from './pair';

export async function engineOnHost(pair: TestPair, host: ModelHost = new ModelHost(nodePlatform()),
  view: HostApi = host): Promise<C2CEngine> {
  await host.init({ device: 'cpu', allowRemoteModels: false, shareDevice: false, topology: 'node' });
  const fuser = path.join(pair.dir, 'fuser');
  return assembleEngine({
    opts: { sharer: { id: 'sharer', localPath: pair.dir }, receiver: { id: 'receiver', localPath: pair.dir }, fuser },
    hosts: async () => ({ sharer: view, receiver: view }),
    topology: 'node',
    fuser: { url: fuser },
    reload: async () => undefined,
    dispose: () => host.dispose(),
  });
}
