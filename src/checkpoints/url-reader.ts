/**
 * Reader for an official checkpoint hosted as static files under one base URL (the Hub folder a user loads):
 * the shared cached HTTP reader (cache-first, byte progress, Content-Length check), whose FuserFormatErrors
 * the official loader reports as CheckpointFormatError.
 */
import { httpFileReader, type HttpReaderOptions } from '../fuser/format/http-reader';
import type { FuserFileReader } from '../fuser/format/files';

export function urlCheckpointReader(baseUrl: string, opts: HttpReaderOptions = {}): FuserFileReader {
  return httpFileReader(baseUrl, opts);
}
