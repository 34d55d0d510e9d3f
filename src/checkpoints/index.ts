/** Official C2C checkpoint support (browser-safe; the Node folder reader is in `./node-io`). */
export { loadOfficialCheckpoint, loadOfficialCheckpointWithInfo, parseLayerMap, type CheckpointReader, type CheckpointSource,
  type LoadOfficialOptions, type OfficialCheckpointInfo } from './official';
export { urlCheckpointReader } from './url-reader';
export { readTorchStateDict, type LoadedTensor, type TorchReadOptions } from './torch-archive';
export { unpickle, DEFAULT_UNPICKLER_LIMITS, type UnpicklerLimits } from './unpickler';
export { DEFAULT_ZIP_LIMITS, type ZipLimits } from './zip';
export { expectedProjectorShapes, checkProjectorKeys, type ProjectorDims } from './projector-keys';
