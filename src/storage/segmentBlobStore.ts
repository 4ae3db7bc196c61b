/**
 * A packed store for small blobs: blobs are appended as records (segmentRecord.ts)
 * to a few large segment files, found through an in-memory index
 * (segmentIndex.ts), and evicted a whole segment at a time, oldest first. One
 * file per blob costs four system calls through libuv's thread pool and an
 * inode per write (open, write, close, rename) and four per read; here the
 * commits that arrive together are written with one writev, and a read is one
 * pread on a file that is already open.
 *
 * Layout: `<directory>/<number>.seg`, numbered from 1 upwards, for each
 * sealed segment (one no longer appended to) `<number>.idx`, its index file
 * (segmentIndexFile.ts), and the `lock` of the one process using the store
 * (util/directoryLock.ts).
 *
 * Durability is the disk store's: a commit resolves once its record is written
 * to the segment file (in the page cache, not fsync'ed), so a killed process
 * loses no acknowledged blob, and the index only learns of a record after its
 * write returned, so nothing half-written is ever served. When a segment is
 * sealed, it is fsync'ed and its index file written in the background (temporary
 * name, fsync, rename). Opening the store loads the index file of each sealed
 * segment whose length, inode and birth time it matches, and reads the other
 * segments (the one being appended to, a sealed one whose index file is
 * missing, stale or corrupt) from the start, checking each record's CRC and
 * truncating the segment at the first record that does not check out (the torn
 * tail of a crash); a sealed segment read that way gets its index file again.
 * Later records win over earlier ones with the same key.
 *
 * Integrity: a record of a segment that was read at opening had its CRC checked
 * then; a record of a segment whose index file was loaded instead has its CRC
 * checked when it is read (or copied forward), and a record that fails is
 * dropped from the index and reported missing. So, as before, no record is
 * served whose CRC was not checked since the store opened.
 *
 * Eviction is FIFO by segment: when an append would exceed the size bound, the
 * oldest segments are deleted whole. To keep what is used, a blob that is read
 * or found while it sits in the oldest quarter of the segments is copied
 * forward into the current one (as Buildbarn's block-based storage refreshes
 * blobs), so a hot blob is not lost with its old segment. Retention
 * (FindMissingOptions.retainUntilMs) is approximated by the same copy.
 *
 * Content is not checked against the digest here (VerifyingBlobStore does that
 * for the CAS).
 *
 * The parts: segmentFiles.ts (the segment files, sealing and eviction),
 * segmentRecovery.ts (opening), segmentAppender.ts (the write path) and
 * segmentReader.ts (reads and their CRC checks); this module holds the
 * BlobStore operations and the copy forward.
 */
import { fstatSync, mkdirSync } from 'node:fs';
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey, isEmptyDigest } from '../digest/digest.js';
import { lockDirectory } from '../util/directoryLock.js';
import type { BatchItem, Blob, BlobStore, BlobWriter, FindMissingOptions, StorageUsage } from './blobStore.js';
import type { EvictionListener } from './eviction.js';
import { bufferBlob } from './memoryBlobStore.js';
import { SegmentAppender, SegmentBlobWriter } from './segmentAppender.js';
import { SegmentFiles } from './segmentFiles.js';
import { keyWordsOf, SegmentIndex, type SegmentLocation } from './segmentIndex.js';
import { SegmentReader } from './segmentReader.js';
import { forEachRecord, loadSegments } from './segmentRecovery.js';

export { MAXIMUM_RECORD_BYTES } from './segmentAppender.js';

/** The largest segment a store starts (a larger record gets a segment of its own). */
const MAXIMUM_SEGMENT_BYTES = 128 * 1024 * 1024;
/** A store keeps at least this many segments' worth of room, so eviction frees a small share at a time. */
const SEGMENTS_PER_STORE = 32;
/** Blobs up to this size are read whole by get, so a later eviction cannot break the caller. */
const EAGER_READ_BYTES = 1024 * 1024;

export interface SegmentBlobStoreOptions {
  directory: string;
  maximumSizeBytes: number;
  /** Target size of a segment file; by default a 32nd of the bound, at most 128 MiB. */
  segmentBytes?: number;
  /**
   * Reads of at most this many bytes, and appends of at most this many bytes
   * at once, are made with synchronous system calls on the event loop instead
   * of a round trip through libuv's thread pool (see docs/performance.md for
   * the measurement that chose the default).
   */
  synchronousIoBytes?: number;
  /** Told about each eviction (for logs and metrics). */
  onEviction?: EvictionListener;
}

/** The default of SegmentBlobStoreOptions.synchronousIoBytes. */
export const DEFAULT_SYNCHRONOUS_IO_BYTES = 64 * 1024;

export class SegmentBlobStore implements BlobStore {
  readonly maximumSizeBytes: number;
  private readonly reader: SegmentReader;
  private readonly appender: SegmentAppender;
  /** Keys (digestKey) being copied forward, so a blob is copied once. */
  private readonly refreshing = new Set<string>();
  private readonly keyScratch = new Uint32Array(8);
  private readonly hexScratch = Buffer.alloc(32);

  private constructor(
    private readonly files: SegmentFiles,
    synchronousIoBytes: number,
    private readonly unlock: () => void,
  ) {
    this.maximumSizeBytes = files.maximumSizeBytes;
    this.reader = new SegmentReader(files, synchronousIoBytes);
    this.appender = new SegmentAppender(files, synchronousIoBytes);
  }

  /** Opens the store in `directory`; refused (DirectoryInUseError) while another process has it open. */
  static async open(options: SegmentBlobStoreOptions): Promise<SegmentBlobStore> {
    const segmentBytes =
      options.segmentBytes ??
      Math.max(1, Math.min(MAXIMUM_SEGMENT_BYTES, Math.floor(options.maximumSizeBytes / SEGMENTS_PER_STORE)));
    mkdirSync(options.directory, { recursive: true });
    const unlock = await lockDirectory(options.directory);
    const files = new SegmentFiles(
      options.directory,
      options.maximumSizeBytes,
      segmentBytes,
      new SegmentIndex(),
      options.onEviction,
    );
    const store = new SegmentBlobStore(files, options.synchronousIoBytes ?? DEFAULT_SYNCHRONOUS_IO_BYTES, unlock);
    try {
      loadSegments(files);
    } catch (error) {
      unlock();
      throw error;
    }
    return store;
  }

  /** Bytes of the index's tables (for the memory figures in docs/performance.md). */
  get indexMemoryBytes(): number {
    return this.files.index.memoryBytes;
  }

  usage(_context: RequestContext): StorageUsage {
    return { usedBytes: this.files.usedBytes, maximumBytes: this.maximumSizeBytes, blobCount: this.files.index.count };
  }

  async findMissing(
    _context: RequestContext,
    digests: readonly Digest[],
    options: FindMissingOptions = {},
  ): Promise<Digest[]> {
    const missing: Digest[] = [];
    const refreshBelow = this.refreshBelow(options.retainUntilMs);
    for (const digest of digests) {
      if (isEmptyDigest(digest)) continue;
      const location = this.locate(digest);
      if (!location) missing.push(digest);
      else if (location.segment < refreshBelow) this.refreshInBackground(digest, location);
    }
    return missing;
  }

  /** Every stored key, oldest first, read from the segments' record headers (for asset records). */
  async list(_context: RequestContext): Promise<Digest[]> {
    const digests: Digest[] = [];
    for (const segment of this.files.segments.values()) {
      if (segment.evicted || segment.sizeBytes === 0) continue;
      // Appends under way may not have reached the file yet: stop at its end.
      const bytes = Math.min(segment.sizeBytes, fstatSync(segment.fd).size);
      forEachRecord(segment, bytes, (digest, location) => {
        const live = this.locate(digest);
        if (live && live.segment === location.segment && live.offset === location.offset) digests.push(digest);
      });
    }
    return digests;
  }

  async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    if (isEmptyDigest(digest)) return bufferBlob(Buffer.alloc(0));
    const location = this.locate(digest);
    if (!location) return undefined;
    if (location.length > EAGER_READ_BYTES) {
      return {
        sizeBytes: location.length,
        read: (offset, limit) => this.reader.stream(context, digest, location, offset, limit),
      };
    }
    const data = await this.reader.readData(digest, location);
    if (!data) return undefined;
    if (location.segment < this.refreshBelow()) this.copyForward(digest, data);
    return bufferBlob(data, context);
  }

  async put(_context: RequestContext, digest: Digest): Promise<BlobWriter> {
    return new SegmentBlobWriter(this, digest);
  }

  /**
   * Appends several in-memory blobs together: their records join one write
   * (one writev for up to 256 records), with the durability and visibility of
   * single commits; resolves once all are written, fails if any fails (the
   * ones written stay, and an identical append of them again writes nothing).
   */
  putBatch(_context: RequestContext, items: readonly BatchItem[]): Promise<void> {
    return this.appender.appendBatch(items);
  }

  /** Waits for the appends and index files under way, then closes the segment files. */
  async close(): Promise<void> {
    await this.appender.close();
    await this.files.close();
    this.unlock();
  }

  /** @internal Appends a committed blob; resolves once it is written and visible. */
  append(digest: Digest, data: readonly Buffer[]): Promise<void> {
    return this.appender.append(digest, data);
  }

  private locate(digest: Digest): SegmentLocation | undefined {
    keyWordsOf(digest, this.keyScratch, this.hexScratch);
    return this.files.index.get(this.keyScratch, digest.sizeBytes);
  }

  /** Segments below this number are in the oldest quarter (the oldest half for a retained blob). */
  private refreshBelow(retainUntilMs = 0): number {
    const oldest = this.files.index.oldestSegment;
    return oldest + Math.floor((this.files.current.id - oldest + 1) / (retainUntilMs > 0 ? 2 : 4));
  }

  private refreshInBackground(digest: Digest, location: SegmentLocation): void {
    if (location.length > EAGER_READ_BYTES || this.refreshing.has(digestKey(digest))) return;
    this.reader.readData(digest, location).then(
      (data) => data && this.copyForward(digest, data),
      () => undefined, // evicted meanwhile: nothing to keep
    );
  }

  private copyForward(digest: Digest, data: Buffer): void {
    const key = digestKey(digest);
    if (this.refreshing.has(key) || this.appender.closed) return;
    this.refreshing.add(key);
    const location = this.locate(digest);
    if (!location || location.segment >= this.refreshBelow()) {
      this.refreshing.delete(key);
      return;
    }
    const words = new Uint32Array(this.keyScratch);
    this.appender.appendCopy(digest, words, data, () => this.refreshing.delete(key));
  }
}
