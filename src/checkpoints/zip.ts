/**
 * Size-guarded zip reading for `torch.save` archives (fflate underneath). Declared sizes, entry count and
 * compression method are checked from the central directory *before* anything is copied or inflated, and
 * every extracted entry must have exactly its declared size (fflate silently clips a truncated stored entry).
 */
import { unzipSync } from 'fflate';
import { CheckpointFormatError } from '../errors';

export interface ZipLimits {
  /** Largest single entry, uncompressed bytes. */
  maxEntryBytes: number;
  /** Sum of all uncompressed entries. */
  maxTotalBytes: number;
  maxEntries: number;
}

/** A 0.6B-pair projector file is ~34 MB; the largest released pair (Qwen3-8B) ~60 MB per layer. */
export const DEFAULT_ZIP_LIMITS: ZipLimits = {
  maxEntryBytes: 1 << 30,
  maxTotalBytes: 1 << 30,
  maxEntries: 10_000,
};

export function readZip(bytes: Uint8Array, fileName: string, limits: Partial<ZipLimits> = {}): Map<string, Uint8Array> {
  const lim = { ...DEFAULT_ZIP_LIMITS, ...limits };
  const declared = new Map<string, number>();
  let total = 0;
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, {
      filter(f) {
        if (declared.size >= lim.maxEntries) throw guard(`more than ${lim.maxEntries} entries`);
        if (declared.has(f.name)) throw guard(`duplicate entry '${f.name}'`);
        if (f.compression !== 0 && f.compression !== 8) throw guard(`entry '${f.name}' uses compression method ${f.compression}`);
        if (!Number.isSafeInteger(f.originalSize) || f.originalSize < 0 || f.originalSize > lim.maxEntryBytes) {
          throw guard(`entry '${f.name}' declares ${f.originalSize} bytes, over the ${lim.maxEntryBytes}-byte limit`);
        }
        if (f.compression === 0 && f.size !== f.originalSize) throw guard(`stored entry '${f.name}' has mismatched sizes`);
        total += f.originalSize;
        if (total > lim.maxTotalBytes) throw guard(`entries declare more than ${lim.maxTotalBytes} bytes in total`);
        // Stored data cannot be larger than the archive holding it: reject absurd declarations before copying.
        if (f.size > bytes.length) throw guard(`entry '${f.name}' declares ${f.size} bytes in a ${bytes.length}-byte file`);
        // Deflate expands at most ~1032:1, so a larger claim is a lie meant to make us allocate.
        if (f.compression === 8 && f.originalSize > f.size * 1032 + 1024) throw guard(`entry '${f.name}' claims an impossible inflate ratio`);
        declared.set(f.name, f.originalSize);
        return true;
      },
    });
  } catch (e) {
    if (e instanceof CheckpointFormatError) throw e;
    if (e instanceof GuardError) throw new CheckpointFormatError(`${fileName}: ${e.message}`, { field: fileName });
    throw new CheckpointFormatError(`${fileName}: not a readable zip archive (${(e as Error).message})`, { field: fileName }, { cause: e });
  }
  const out = new Map<string, Uint8Array>();
  for (const [name, size] of declared) {
    const data = files[name];
    if (!data || data.length !== size) {
      throw new CheckpointFormatError(`${fileName}: entry '${name}' is truncated (${data?.length ?? 0} of ${size} bytes)`, { field: fileName, tensor: name });
    }
    out.set(name, data);
  }
  return out;
}

class GuardError extends Error {}
const guard = (m: string) => new GuardError(m);
