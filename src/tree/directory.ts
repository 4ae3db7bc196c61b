/**
 * One Directory message at a time: reading it from the CAS, decoding it, and
 * checking what it claims before anything trusts it. A blob that is not a
 * Directory, or one naming malformed digests or unsafe names, is a
 * MalformedTreeError (INVALID_ARGUMENT), a type of its own so that callers can
 * tell a bad tree (a miss, or the client's error) from a failing store.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestKey, digestOf, isEmptyDigest, parseDigest } from '../digest/digest.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, getBuffer } from '../storage/blobStore.js';
import { Code, StatusError } from '../util/status.js';
import { isSafeName } from './names.js';

/** The digest (SHA-256) of the empty Directory message, which is the empty blob. */
export const EMPTY_DIRECTORY_DIGEST: Digest = digestOf(Buffer.alloc(0));

/** A tree that cannot be trusted as it is: not a Directory, a malformed digest, an unsafe or repeated name. */
export class MalformedTreeError extends StatusError {
  constructor(message: string) {
    super(Code.INVALID_ARGUMENT, message);
    this.name = 'MalformedTreeError';
  }
}

/** Decodes a Directory blob; MalformedTreeError when it is not one. */
export function decodeDirectory(data: Buffer, digest: Digest): Directory {
  try {
    return Directory.decode(data);
  } catch (error) {
    throw new MalformedTreeError(`blob ${digestKey(digest)} is not a Directory message: ${(error as Error).message}`);
  }
}

export interface CheckDirectoryOptions {
  /** Every file and child digest must be well formed for this function; each is replaced by its parsed form. */
  digestFunction?: DigestFunction;
  /** Every entry name must be creatable on a host (see isSafeName: no "/", NUL, "." or "..", at most 255 bytes) and appear once. */
  safeNames?: boolean;
}

/** Checks a decoded Directory in place; MalformedTreeError naming the directory and the entry when it fails. */
export function checkDirectory(directory: Directory, digest: Digest, options: CheckDirectoryOptions): Directory {
  const where = `directory ${digestKey(digest)}`;
  const names = new Set<string>();
  const checkName = (name: string) => {
    if (!options.safeNames) return;
    if (!isSafeName(name)) throw new MalformedTreeError(`${where} has an unsafe entry name "${name}"`);
    if (names.has(name)) throw new MalformedTreeError(`${where} has the entry "${name}" more than once`);
    names.add(name);
  };
  const checkDigest = (raw: Digest | undefined, field: string): Digest | undefined => {
    if (!options.digestFunction) return raw;
    try {
      return parseDigest(raw, options.digestFunction, field);
    } catch (error) {
      throw new MalformedTreeError(`${where}: ${(error as Error).message}`);
    }
  };
  for (const file of directory.files) {
    checkName(file.name);
    file.digest = checkDigest(file.digest, `digest of file "${file.name}"`);
  }
  for (const child of directory.directories) {
    checkName(child.name);
    child.digest = checkDigest(child.digest, `digest of directory "${child.name}"`);
  }
  for (const link of directory.symlinks) {
    checkName(link.name);
    if (options.safeNames && (link.target === '' || link.target.includes('\0'))) {
      throw new MalformedTreeError(`${where} has a symlink "${link.name}" with an invalid target`);
    }
  }
  return directory;
}

/**
 * Reads and decodes one Directory, or undefined when the CAS does not have it.
 * The empty digest is the empty directory, with no read.
 */
export async function readDirectory(
  context: RequestContext,
  cas: BlobStore,
  digest: Digest,
): Promise<Directory | undefined> {
  if (isEmptyDigest(digest)) return Directory.decode(Buffer.alloc(0));
  const data = await getBuffer(context, cas, digest);
  return data === undefined ? undefined : decodeDirectory(data, digest);
}
