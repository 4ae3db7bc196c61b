/**
 * Local-disk backend, the default. Layout under its directory:
 *
 *   blobs/ab/<hash>-<size>   one file per blob, sharded by the first two hex digits
 *   tmp/                     writes in progress; emptied at start-up
 *   index                    LRU order and sizes, saved periodically and on close
 *   lock                     the pid of the one process using the store (util/directoryLock.ts)
 *
 * A blob is written to tmp/ and renamed into blobs/ only on commit, so a crash
 * never leaves a partial blob visible and concurrent writers of the same blob
 * simply replace one complete file with another. Verification of content against
 * the digest is the job of VerifyingBlobStore, which wraps this store for the CAS.
 * Start-up reads the saved index and lists the shard directories; it never
 * re-hashes blobs. Blobs found on disk but not in the index (after a crash) are
 * stat'ed and treated as least recently used.
 *
 * With `readOnlyBlobs`, every blob is made read-only (0444) before it becomes
 * visible, so that a worker on the same machine may hard-link blobs straight into
 * input roots (see worker/sharedCas.ts) and no one writing through such a link
 * by mistake can alter the CAS. The store itself never writes a blob in place:
 * it only renames files in and unlinks them, which the mode does not restrict.
 */
import { randomBytes } from 'node:crypto';
import {
  chmod,
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { type RequestContext, throwIfAborted } from '../context/requestContext.js';
import { type Digest, digestKey, isEmptyDigest } from '../digest/digest.js';
import { lockDirectory } from '../util/directoryLock.js';
import { SpillBuffer } from '../util/spillBuffer.js';
import { invalidArgument, notFound } from '../util/status.js';
import {
  type Blob,
  type BlobStore,
  type BlobWriter,
  type FindMissingOptions,
  READ_CHUNK_BYTES,
  type ReadOptions,
  type StorageUsage,
} from './blobStore.js';
import { allocateWithHeadroom, truncateWithHeadroom } from './chunkHeadroom.js';
import type { EvictionListener } from './eviction.js';
import { LruIndex } from './lruIndex.js';
import { bufferBlob } from './memoryBlobStore.js';

/** Blobs up to this size are buffered in memory and written with one call. */
const SPILL_THRESHOLD_BYTES = 1024 * 1024;
/** Once spilled, chunks are gathered up to this size and written with one writev call. */
const WRITE_BATCH_BYTES = 1024 * 1024;
const INDEX_SAVE_INTERVAL_MS = 30_000;
/** The mode of blobs of a store with readOnlyBlobs. */
export const READ_ONLY_BLOB_MODE = 0o444;

/** Where the store in `directory` keeps the file of a blob (also for readers in other processes). */
export function diskBlobPath(directory: string, digest: Digest): string {
  return blobPathOfKey(directory, digestKey(digest));
}

function blobPathOfKey(directory: string, key: string): string {
  return join(directory, 'blobs', key.slice(0, 2), key);
}

export interface DiskBlobStoreOptions {
  directory: string;
  maximumSizeBytes: number;
  now?: () => number;
  /** Told about each eviction round (for logs and metrics). */
  onEviction?: EvictionListener;
  /** Make each blob file read-only (0444) before it becomes visible; see the module comment. */
  readOnlyBlobs?: boolean;
}

export class DiskBlobStore implements BlobStore {
  private dirty = false;
  private saveTimer: NodeJS.Timeout | undefined;
  private saving: Promise<void> | undefined;
  /** Installs run one at a time so that space is checked and claimed atomically. */
  private installing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly directory: string,
    private readonly index: LruIndex,
    private readonly onEviction: EvictionListener | undefined,
    private readonly readOnlyBlobs: boolean,
    private readonly unlock: () => void,
  ) {}

  /** Opens the store in `directory`; refused (DirectoryInUseError) while another process has it open. */
  static async open(options: DiskBlobStoreOptions): Promise<DiskBlobStore> {
    const { directory } = options;
    await mkdir(directory, { recursive: true });
    const unlock = await lockDirectory(directory);
    const index = new LruIndex(options.maximumSizeBytes, options.now);
    const store = new DiskBlobStore(directory, index, options.onEviction, options.readOnlyBlobs ?? false, unlock);
    try {
      await rm(join(directory, 'tmp'), { recursive: true, force: true });
      await mkdir(join(directory, 'tmp'), { recursive: true });
      const shards = [...Array(256).keys()].map((i) => i.toString(16).padStart(2, '0'));
      await Promise.all(shards.map((s) => mkdir(join(directory, 'blobs', s), { recursive: true })));
      await store.loadIndex(shards);
    } catch (error) {
      unlock();
      throw error;
    }
    // A failed periodic save is retried at the next interval (saveIndex marks the index dirty again).
    store.saveTimer = setInterval(() => void store.saveIndex().catch(() => undefined), INDEX_SAVE_INTERVAL_MS);
    store.saveTimer.unref();
    return store;
  }

  get usedBytes(): number {
    return this.index.sizeBytes;
  }

  get blobCount(): number {
    return this.index.count;
  }

  async findMissing(
    _context: RequestContext,
    digests: readonly Digest[],
    options: FindMissingOptions = {},
  ): Promise<Digest[]> {
    const missing: Digest[] = [];
    for (const digest of digests) {
      if (isEmptyDigest(digest)) continue;
      if (!this.index.touch(digestKey(digest), options.retainUntilMs)) missing.push(digest);
    }
    if (missing.length !== digests.length) this.dirty = true;
    return missing;
  }

  async list(_context: RequestContext): Promise<Digest[]> {
    return this.index.digests();
  }

  usage(_context: RequestContext): StorageUsage {
    return { usedBytes: this.usedBytes, maximumBytes: this.index.maximumSizeBytes, blobCount: this.blobCount };
  }

  async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    if (isEmptyDigest(digest)) return bufferBlob(Buffer.alloc(0));
    const key = digestKey(digest);
    if (!this.index.touch(key)) return undefined;
    this.dirty = true;
    const path = this.pathOf(key);
    const sizeBytes = this.index.sizeOf(key) ?? digest.sizeBytes;
    if (sizeBytes <= SPILL_THRESHOLD_BYTES) {
      // Small blobs: one read now, so a later eviction cannot break the caller.
      try {
        return bufferBlob(await readFile(path), context);
      } catch (error) {
        throw this.vanished(error, key);
      }
    }
    return {
      sizeBytes,
      read: (offset, limit, options) => this.stream(context, key, sizeBytes, offset, limit, options),
    };
  }

  async put(_context: RequestContext, digest: Digest): Promise<BlobWriter> {
    return new DiskBlobWriter(this, digest);
  }

  /** For a worker-local cache that hard-links blobs into input trees (see BlobStore.localPath). */
  localPath(_context: RequestContext, digest: Digest): string | undefined {
    if (isEmptyDigest(digest)) return undefined;
    const key = digestKey(digest);
    if (!this.index.touch(key)) return undefined;
    this.dirty = true;
    return this.pathOf(key);
  }

  /** Removes a blob (for example one found modified on disk); true when it was present. */
  delete(digest: Digest): Promise<boolean> {
    const key = digestKey(digest);
    // Serialised with installs, so a concurrent commit of the same blob is not undone halfway.
    const result = this.installing.then(async () => {
      const present = this.index.remove(key);
      await unlink(this.pathOf(key)).catch(() => undefined);
      if (present) this.dirty = true;
      return present;
    });
    this.installing = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Saves the index, stops the periodic save and lets another process open the directory. */
  async close(): Promise<void> {
    if (this.saveTimer) clearInterval(this.saveTimer);
    this.dirty = true;
    try {
      await this.saveIndex();
    } finally {
      this.unlock();
    }
  }

  /** @internal used by DiskBlobWriter */
  temporaryPath(): string {
    return join(this.directory, 'tmp', randomBytes(12).toString('hex'));
  }

  /** @internal Moves a complete temporary file into place and accounts for it. */
  install(temporaryPath: string, key: string, sizeBytes: number): Promise<void> {
    // Between makeRoom and add there are awaits; without serialising, concurrent
    // commits would all see the same free space and overshoot the size limit.
    const result = this.installing.then(() => this.installNow(temporaryPath, key, sizeBytes));
    this.installing = result.catch(() => undefined);
    return result;
  }

  private async installNow(temporaryPath: string, key: string, sizeBytes: number): Promise<void> {
    if (this.readOnlyBlobs) await chmod(temporaryPath, READ_ONLY_BLOB_MODE);
    const usedBeforeBytes = this.index.sizeBytes;
    const victims = this.index.makeRoom(sizeBytes, key);
    if (victims.length > 0) this.reportEviction(victims.length, usedBeforeBytes - this.index.sizeBytes, sizeBytes);
    await Promise.all(victims.map((victim) => unlink(this.pathOf(victim)).catch(() => undefined)));
    await rename(temporaryPath, this.pathOf(key));
    this.index.add(key, sizeBytes);
    this.dirty = true;
  }

  private reportEviction(blobs: number, bytes: number, incomingBytes: number): void {
    try {
      this.onEviction?.({
        blobs,
        bytes,
        incomingBytes,
        usedBytes: this.index.sizeBytes,
        maximumBytes: this.index.maximumSizeBytes,
      });
    } catch {
      // A listener's failure must not fail the write.
    }
  }

  private pathOf(key: string): string {
    return blobPathOfKey(this.directory, key);
  }

  private async *stream(
    context: RequestContext,
    key: string,
    sizeBytes: number,
    offset = 0,
    limit?: number,
    options: ReadOptions = {},
  ): AsyncGenerator<Buffer> {
    const pool = options.chunkPool;
    const end = limit === undefined ? sizeBytes : Math.min(sizeBytes, offset + limit);
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(key), 'r');
    } catch (error) {
      throw this.vanished(error, key);
    }
    try {
      for (let position = offset; position < end; ) {
        throwIfAborted(context);
        const length = Math.min(READ_CHUNK_BYTES, end - position);
        // Room before the chunk lets ByteStream Read frame it without copying it (chunkHeadroom.ts);
        // a reader that lends a pool gets its own buffers back, to reuse.
        const buffer = pool ? pool.take(length) : allocateWithHeadroom(length);
        const { bytesRead } = await handle.read(buffer, 0, length, position);
        if (bytesRead === 0) throw notFound(`blob ${key} is shorter on disk than expected`);
        position += bytesRead;
        yield bytesRead === length ? buffer : truncateWithHeadroom(buffer, bytesRead);
      }
    } finally {
      await handle.close();
    }
  }

  private vanished(error: unknown, key: string): Error {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      this.index.remove(key);
      return notFound(`blob ${key} was evicted`);
    }
    return error as Error;
  }

  private async loadIndex(shards: string[]): Promise<void> {
    const saved = new Map<string, number>();
    try {
      const text = await readFile(join(this.directory, 'index'), 'utf8');
      for (const line of text.split('\n')) {
        const space = line.indexOf(' ');
        if (space > 0) saved.set(line.slice(0, space), Number(line.slice(space + 1)));
      }
    } catch {
      // No saved index: first start, or the previous run crashed before saving one.
    }
    const onDisk = new Set<string>();
    for (const shard of shards) {
      for (const name of await readdir(join(this.directory, 'blobs', shard))) onDisk.add(name);
    }
    // Unknown files first (oldest), then the saved order from least to most recent.
    for (const key of onDisk) {
      if (saved.has(key)) continue;
      try {
        this.index.add(key, (await stat(this.pathOf(key))).size);
      } catch {
        // Removed meanwhile.
      }
    }
    for (const [key, sizeBytes] of saved) {
      if (onDisk.has(key) && Number.isSafeInteger(sizeBytes)) this.index.add(key, sizeBytes);
    }
    this.dirty = saved.size !== this.index.count;
  }

  private async saveIndex(): Promise<void> {
    // Loop: another caller woken by the same save may have started a newer one.
    while (this.saving) await this.saving.catch(() => undefined);
    if (!this.dirty) return;
    this.dirty = false;
    const lines: string[] = [];
    for (const [key, sizeBytes] of this.index.snapshot()) lines.push(`${key} ${sizeBytes}\n`);
    const temporary = this.temporaryPath();
    this.saving = (async () => {
      try {
        await writeFile(temporary, lines.join(''));
        await rename(temporary, join(this.directory, 'index'));
      } catch (error) {
        this.dirty = true;
        await unlink(temporary).catch(() => undefined);
        throw error;
      }
    })().finally(() => {
      this.saving = undefined;
    });
    await this.saving;
  }
}

/** Buffers small blobs in memory; spills larger ones to a temporary file as they arrive. */
class DiskBlobWriter implements BlobWriter {
  private readonly content: SpillBuffer;
  private finished = false;

  constructor(
    private readonly store: DiskBlobStore,
    private readonly digest: Digest,
  ) {
    this.content = new SpillBuffer({
      memoryLimitBytes: SPILL_THRESHOLD_BYTES,
      temporaryPath: () => store.temporaryPath(),
      writeBatchBytes: WRITE_BATCH_BYTES,
    });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.finished) throw invalidArgument('write after the blob was committed or aborted');
    await this.content.append(chunk);
  }

  async commit(): Promise<void> {
    if (this.finished) throw invalidArgument('blob already committed or aborted');
    this.finished = true;
    let temporaryPath: string | undefined;
    try {
      await this.content.finish();
      temporaryPath = await this.content.takeFile();
      await this.store.install(temporaryPath, digestKey(this.digest), this.content.sizeBytes);
    } catch (error) {
      await this.content.dispose();
      if (temporaryPath !== undefined) await unlink(temporaryPath).catch(() => undefined);
      throw error;
    }
    await this.content.dispose();
  }

  async abort(): Promise<void> {
    this.finished = true;
    await this.content.dispose();
  }
}
