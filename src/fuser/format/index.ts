/**
 * The c2c-web fuser format (docs/fuser-format.md): fuser.json validation (manifest.ts), the tensor-set check
 * that builds FuserWeights (validate.ts), writing (serialise.ts) and fetching (fetch.ts); node-io.ts is Node-only.
 */
export { FUSER_FORMAT_VERSION, readManifest, parseFuserJson, type FuserManifest } from './manifest';
export { expectedFuserTensors, loadFuserWeights, tensorStorage, SCALE_SUFFIX, type LoadFuserOptions } from './validate';
export { serializeFuser } from './serialise';
export { loadFuserFromUrl } from './fetch';
