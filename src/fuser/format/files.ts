/**
 * How fuser loaders get their files: one reader interface for a folder of files (an HTTP base URL, a Node
 * directory, or files already in memory), with the integrity facts a manifest may give (size, sha256) and
 * a report per file (bytes, served from cache or not, what was verified). Both formats (c2c-web and the
 * official C2C layout) read through it, so caching, progress and integrity work the same for both.
 */
import { FuserFormatError } from '../../errors';
import type { FuserFileProgress, FuserFileReport } from '../../types';

/** What a manifest says about a file (c2c-web fuser.json `integrity`); absent fields are not checked. */
export interface FileExpectation {
  size?: number;
  sha256?: string;
}

/** Byte progress of one file; `cached`: served from the local cache, not the network. */
export type FileProgress = FuserFileProgress;

export type FileReport = FuserFileReport;

export interface FuserFileReader {
  /** Base URL or directory, for messages. */
  readonly location: string;
  /** The file's bytes; throws FuserFormatError when it is absent or fails `expect`. */
  read(path: string, expect?: FileExpectation): Promise<Uint8Array>;
  /**
   * The file's bytes, or null when it does not exist (HTTP 404, no such file) or is not what `accept` looks for
   * (a server answering every path with its index page): format detection. Cached and reported when accepted.
   */
  readOptional(path: string, accept?: (bytes: Uint8Array) => boolean): Promise<Uint8Array | null>;
  /** Whether an intact copy is in the local cache (no network); false for readers without a cache. */
  isCached(path: string): Promise<boolean>;
  /** One report per file read so far, in order. */
  readonly reports: FileReport[];
}

/** Paths inside a fuser folder: relative, '/'-separated, no '.'/'..' segments. */
export function checkRelativePath(path: string): void {
  if (!/^[\w.+\-]+(\/[\w.+\-]+)*$/.test(path) || path.split('/').some((s) => s === '.' || s === '..')) {
    throw new FuserFormatError(`'${path}' is not a plain relative file path`, { file: path });
  }
}

/** SHA-256 as lowercase hex through WebCrypto (browsers in secure contexts, Node ≥ 20); undefined without it. */
export async function sha256Hex(bytes: Uint8Array): Promise<string | undefined> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return undefined;
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Checks bytes against what the manifest says; returns what was verified or throws FuserFormatError.
 * `fallback` names the weaker check already passed (e.g. Content-Length) when the manifest says nothing.
 */
export async function verifyFile(
  path: string,
  bytes: Uint8Array,
  expect: FileExpectation | undefined,
  fallback: FileReport['verified'],
): Promise<FileReport['verified']> {
  if (expect?.size !== undefined && bytes.length !== expect.size) {
    const details = { file: path, expected: expect.size, actual: bytes.length };
    throw new FuserFormatError(`'${path}' has ${bytes.length} bytes, fuser.json says ${expect.size}`, details);
  }
  if (expect?.sha256 !== undefined) {
    const got = await sha256Hex(bytes);
    if (got !== undefined) {
      if (got !== expect.sha256) {
        throw new FuserFormatError(`'${path}' has sha256 ${got}, fuser.json says ${expect.sha256}`,
          { file: path, expected: expect.sha256, actual: got });
      }
      return 'sha256';
    }
  }
  return expect?.size !== undefined ? 'size' : fallback;
}

/** A reader over files already in memory (tests, or files the caller fetched itself). */
export function memoryFileReader(files: Record<string, Uint8Array>, location = '(in memory)'): FuserFileReader {
  const reports: FileReport[] = [];
  const get = (path: string) => (Object.prototype.hasOwnProperty.call(files, path)
    && files[path] instanceof Uint8Array ? files[path] : null);
  return {
    location,
    reports,
    async readOptional(path, accept) {
      const bytes = get(path);
      if (!bytes || (accept && !accept(bytes))) return null;
      reports.push({ file: path, bytes: bytes.length, cached: false, verified: 'none' });
      return bytes;
    },
    async read(path, expect) {
      const bytes = get(path);
      if (!bytes) throw new FuserFormatError(`missing file '${path}' in ${location}`, { file: path });
      const verified = await verifyFile(path, bytes, expect, 'none');
      reports.push({ file: path, bytes: bytes.length, cached: false, verified });
      return bytes;
    },
    async isCached() {
      return false;
    },
  };
}
