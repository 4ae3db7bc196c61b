/**
 * The worker's own on-disk copy of CAS blobs, so that inputs shared by many
 * actions (toolchains, headers, sysroots) are fetched once and then hard-linked
 * into each input root instead of downloaded and copied every time.
 *
 * Hard links share one inode, hence one mode: a blob staged as an executable
 * (0555) and as a plain file (0444) needs two local copies, so the cache keeps two
 * DiskBlobStores, `executable/` and `plain/`, each with a share of the size limit.
 * Everything fetched is verified against its digest before it becomes visible
 * (VerifyingBlobStore around each DiskBlobStore); a blob wanted in one variant and
 * present in the other is copied locally rather than fetched again.
 *
 * Messages (the Action, Command and Directory blobs an action's tree is made of)
 * are kept in memory instead, bounded in bytes: they are read, never linked, and
 * a round trip through a file (write, rename, read back) for each was a visible
 * part of every action's staging time.
 */
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { backgroundContext, detachedContext, type RequestContext } from '../context/requestContext.js';
import { type Digest, digestFunctionOf, digestKey, digestOf, formatDigest, isEmptyDigest } from '../digest/digest.js';
import { type Blob, type BlobStore, putChunks, readAll, type StorageUsage } from '../storage/blobStore.js';
import { DiskBlobStore } from '../storage/diskBlobStore.js';
import { VerifyingBlobStore } from '../storage/verifyingBlobStore.js';
import { forEachLimit } from '../util/concurrency.js';
import { Code, failedPrecondition, StatusError } from '../util/status.js';

export interface LocalCacheOptions {
  directory: string;
  /** Total size limit of both variants together. */
  maximumSizeBytes: number;
  /** Share of the limit given to executable copies, between 0 and 1; default 0.5. */
  executableShare?: number;
  /** Bytes of messages (Action, Command, Directory) kept in memory; default 32 MiB. */
  messageMemoryBytes?: number;
}

/** A blob wanted locally, in its executable or plain variant. */
export interface LocalBlob {
  digest: Digest;
  executable: boolean;
}

const DEFAULT_FETCH_CONCURRENCY = 16;
const DEFAULT_MESSAGE_MEMORY_BYTES = 32 * 1024 * 1024;

/** The REAPI way to report absent blobs: FAILED_PRECONDITION with one MISSING violation each. */
export function missingBlobsError(digests: readonly Digest[], what = 'blobs'): StatusError {
  const shown = digests.slice(0, 5).map(formatDigest).join(', ');
  const more = digests.length > 5 ? ` and ${digests.length - 5} more` : '';
  return failedPrecondition(
    `${digests.length} ${what} missing from the CAS: ${shown}${more}`,
    digests.map((d) => ({ type: 'MISSING', subject: `blobs/${d.hash}/${d.sizeBytes}`, description: '' })),
  );
}

class Variant {
  readonly verifying: VerifyingBlobStore;
  constructor(
    readonly disk: DiskBlobStore,
    readonly mode: number,
  ) {
    this.verifying = new VerifyingBlobStore(disk);
  }
}

export class LocalCache {
  /** Fetches in flight, so concurrent stagings of one blob share one download. */
  private readonly inFlight = new Map<string, Promise<boolean>>();
  /** Verified messages, least recently used first (a Map keeps insertion order). */
  private readonly messages = new Map<string, Buffer>();
  private messageBytes = 0;

  private constructor(
    private readonly plain: Variant,
    private readonly executable: Variant,
    private readonly messageMemoryBytes: number,
  ) {}

  static async open(options: LocalCacheOptions): Promise<LocalCache> {
    const share = options.executableShare ?? 0.5;
    if (!(share > 0 && share < 1)) throw new RangeError('executableShare must be between 0 and 1');
    const executableBytes = Math.floor(options.maximumSizeBytes * share);
    const [plain, executable] = await Promise.all([
      DiskBlobStore.open({
        directory: join(options.directory, 'plain'),
        maximumSizeBytes: options.maximumSizeBytes - executableBytes,
      }),
      DiskBlobStore.open({ directory: join(options.directory, 'executable'), maximumSizeBytes: executableBytes }),
    ]);
    return new LocalCache(
      new Variant(plain, 0o444),
      new Variant(executable, 0o555),
      options.messageMemoryBytes ?? DEFAULT_MESSAGE_MEMORY_BYTES,
    );
  }

  /** Bytes held by both variants. */
  get usedBytes(): number {
    return this.plain.disk.usedBytes + this.executable.disk.usedBytes;
  }

  /** What both variants hold together, and their bound. */
  usage(): StorageUsage {
    const plain = this.plain.disk.usage(backgroundContext());
    const executable = this.executable.disk.usage(backgroundContext());
    return {
      usedBytes: plain.usedBytes + executable.usedBytes,
      maximumBytes: plain.maximumBytes + executable.maximumBytes,
      blobCount: plain.blobCount + executable.blobCount,
    };
  }

  /** The local file of a cached blob (refreshing its recency), or undefined. Never for the empty blob. */
  localPath(context: RequestContext, digest: Digest, executable: boolean): string | undefined {
    return this.variant(executable).disk.localPath(context, digest);
  }

  /**
   * Makes every listed blob present locally, fetching the absent ones from `remote`
   * with bounded concurrency. Returns the digests the remote does not have (the
   * empty blob is never fetched nor missing).
   */
  async fetchMissing(
    context: RequestContext,
    remote: BlobStore,
    blobs: readonly LocalBlob[],
    concurrency = DEFAULT_FETCH_CONCURRENCY,
  ): Promise<Digest[]> {
    const unique = new Map<string, LocalBlob>();
    for (const blob of blobs) {
      if (isEmptyDigest(blob.digest)) continue;
      unique.set(`${blob.executable ? 'x' : 'p'}${digestKey(blob.digest)}`, blob);
    }
    const absent = [...unique.values()].filter((b) => this.localPath(context, b.digest, b.executable) === undefined);
    const missing = new Map<string, Digest>();
    await forEachLimit(absent, concurrency, async (blob) => {
      if (!(await this.fetch(context, remote, blob))) missing.set(digestKey(blob.digest), blob.digest);
    });
    return [...missing.values()];
  }

  /** The local file of a blob, fetching it first if needed; FAILED_PRECONDITION when the remote lacks it. */
  async pathOf(context: RequestContext, remote: BlobStore, digest: Digest, executable: boolean): Promise<string> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const path = this.localPath(context, digest, executable);
      if (path !== undefined) return path;
      if (!(await this.fetch(context, remote, { digest, executable }))) throw missingBlobsError([digest]);
    }
    throw new StatusError(
      Code.RESOURCE_EXHAUSTED,
      `blob ${formatDigest(digest)} keeps being evicted from the worker cache`,
    );
  }

  /**
   * Reads a small blob (a Directory, Command or Action message): from memory, else
   * from an older on-disk copy, else from `remote`, checked against its digest
   * (DATA_LOSS when it does not match), then kept in memory. Undefined when absent.
   */
  async getBuffer(context: RequestContext, remote: BlobStore, digest: Digest): Promise<Buffer | undefined> {
    if (isEmptyDigest(digest)) return Buffer.alloc(0);
    const key = digestKey(digest);
    const remembered = this.messages.get(key);
    if (remembered !== undefined) {
      this.messages.delete(key);
      this.messages.set(key, remembered);
      return remembered;
    }
    const local = await this.plain.disk.get(context, digest).catch(() => undefined);
    const source = local ?? (await remote.get(context, digest));
    if (!source) return undefined;
    const data = await readAll(source);
    const found = digestOf(data, digestFunctionOf(digest));
    if (found.hash !== digest.hash || found.sizeBytes !== digest.sizeBytes) {
      if (local) {
        // A damaged local copy: drop it and ask the remote.
        await this.plain.disk.delete(digest);
        return this.getBuffer(context, remote, digest);
      }
      throw new StatusError(Code.DATA_LOSS, `the CAS returned corrupt content for blob ${formatDigest(digest)}`);
    }
    this.remember(key, data);
    return data;
  }

  private remember(key: string, data: Buffer): void {
    if (data.length > this.messageMemoryBytes || this.messages.has(key)) return;
    this.messages.set(key, data);
    this.messageBytes += data.length;
    for (const [oldest, buffer] of this.messages) {
      if (this.messageBytes <= this.messageMemoryBytes) break;
      this.messages.delete(oldest);
      this.messageBytes -= buffer.length;
    }
  }

  /** Drops a local copy, e.g. one an action modified through a hard link. */
  async evict(digest: Digest, executable: boolean): Promise<void> {
    await this.variant(executable).disk.delete(digest);
  }

  async close(): Promise<void> {
    await Promise.all([this.plain.disk.close(), this.executable.disk.close()]);
  }

  private variant(executable: boolean): Variant {
    return executable ? this.executable : this.plain;
  }

  /**
   * Installs one blob locally; false when the remote does not have it. Concurrent
   * callers share one fetch, so it runs detached from the first caller's cancellation.
   */
  private fetch(context: RequestContext, remote: BlobStore, blob: LocalBlob): Promise<boolean> {
    const key = `${blob.executable ? 'x' : 'p'}${digestKey(blob.digest)}`;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.fetchNow(detachedContext(context), remote, blob).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async fetchNow(
    context: RequestContext,
    remote: BlobStore,
    { digest, executable }: LocalBlob,
  ): Promise<boolean> {
    const target = this.variant(executable);
    const sibling = this.variant(!executable);
    // The other variant's copy is verified again while copying, so a copy an action
    // corrupted (and that was not evicted yet) falls through to the remote.
    const local = await sibling.disk.get(context, digest).catch(() => undefined);
    if (
      local &&
      (await this.install(context, target, digest, local).then(
        () => true,
        () => false,
      ))
    )
      return true;
    const source = await remote.get(context, digest);
    if (!source) return false;
    try {
      await this.install(context, target, digest, source);
    } catch (error) {
      if (error instanceof StatusError && error.code === Code.INVALID_ARGUMENT) {
        throw new StatusError(
          Code.DATA_LOSS,
          `the CAS returned corrupt content for blob ${formatDigest(digest)}: ${error.message}`,
        );
      }
      throw error;
    }
    return true;
  }

  private async install(context: RequestContext, target: Variant, digest: Digest, source: Blob): Promise<void> {
    await putChunks(context, target.verifying, digest, source.read());
    const path = target.disk.localPath(context, digest);
    if (path !== undefined) await chmod(path, target.mode);
  }
}
