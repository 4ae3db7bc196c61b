/**
 * The farm's own CAS directory, when this worker runs on the farm's machine (the
 * embedded worker of `granary serve` and of `granary build`): plain input files
 * are hard-linked from there into input roots instead of being fetched into the
 * worker's cache, so the machine keeps each blob once.
 *
 * A hard link shares the CAS file's inode, so only files that no staged input can
 * alter are linked: regular files of mode 0444 (the disk store's readOnlyBlobs)
 * owned by this worker's user, of the expected size. The check is made on the
 * linked file itself, after linking, so the file cannot be swapped in between.
 * Executable inputs need mode 0555 and so are never linked from here; they, and
 * every blob this directory lacks, come through the worker's cache as before.
 *
 * The farm may evict a blob while an action uses it: the link keeps the inode,
 * and so the content, alive until the action's directory is removed.
 *
 * Blobs the farm keeps elsewhere (`granary serve` keeps those of up to 64 KiB in
 * segment files, smallBlobBytes) are never looked for here: no system call.
 */
import type { BigIntStats } from 'node:fs';
import { link, lstat, stat, unlink } from 'node:fs/promises';
import type { Digest } from '../digest/digest.js';
import { diskBlobPath, READ_ONLY_BLOB_MODE } from '../storage/diskBlobStore.js';

/** The identity of a linked CAS file, to tell it apart from a later file of the same name. */
export interface LinkedCasFile {
  /** The CAS file's path. */
  readonly source: string;
  readonly inode: bigint;
}

/** Link failures after which the blob is fetched instead (the staging falls back to the cache). */
const FALLBACK_CODES = new Set(['ENOENT', 'EXDEV', 'EMLINK', 'EPERM', 'EACCES', 'ENOTSUP']);

export interface SharedCasOptions {
  /** Blobs of at most this many bytes are never in the directory; 0 by default. */
  smallBlobBytes?: number;
  /** The user whose files may be linked; this process's by default. */
  ownUid?: number;
}

export class SharedCas {
  private constructor(
    readonly directory: string,
    private readonly ownUid: number,
    private readonly smallBlobBytes: number,
  ) {}

  /**
   * The farm's CAS in `directory`, usable for input roots made under
   * `workDirectory`; undefined, with the reason, when they are on different file
   * systems (no hard link could be made) or the directory is not there.
   */
  static async open(
    directory: string,
    workDirectory: string,
    options: SharedCasOptions = {},
  ): Promise<SharedCas | { unusable: string }> {
    let casDevice: number;
    try {
      casDevice = (await stat(directory)).dev;
    } catch (error) {
      return { unusable: `cannot read ${directory}: ${(error as Error).message}` };
    }
    if (casDevice !== (await stat(workDirectory)).dev) {
      return { unusable: `${directory} and ${workDirectory} are on different file systems` };
    }
    return new SharedCas(directory, options.ownUid ?? process.getuid?.() ?? -1, options.smallBlobBytes ?? 0);
  }

  /**
   * Hard-links the blob's CAS file to `destination`; undefined, leaving nothing at
   * `destination`, when it is absent, cannot be linked, or fails the checks. The
   * checks are made on the link (one lstat), so no presence check comes before.
   */
  async linkTo(digest: Digest, destination: string): Promise<LinkedCasFile | undefined> {
    if (digest.sizeBytes <= this.smallBlobBytes) return undefined;
    const source = diskBlobPath(this.directory, digest);
    try {
      await link(source, destination);
    } catch (error) {
      if (FALLBACK_CODES.has((error as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw error;
    }
    const linked = await lstat(destination, { bigint: true });
    if (!this.linkable(linked, digest)) {
      await unlink(destination);
      return undefined;
    }
    return { source, inode: linked.ino };
  }

  /**
   * Removes a CAS file an action altered through its link, if it is still the file
   * that was linked, so that neither a client nor a later action gets the altered
   * content (the farm then finds the blob missing). True when it was removed.
   */
  async discard(file: LinkedCasFile): Promise<boolean> {
    const current = await lstat(file.source, { bigint: true }).catch(() => undefined);
    if (current?.ino !== file.inode) return false;
    await unlink(file.source).catch(() => undefined);
    return true;
  }

  private linkable(found: BigIntStats, digest: Digest): boolean {
    return (
      found.isFile() &&
      Number(found.mode & 0o7777n) === READ_ONLY_BLOB_MODE &&
      Number(found.uid) === this.ownUid &&
      Number(found.size) === digest.sizeBytes
    );
  }
}
