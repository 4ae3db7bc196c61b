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
 */
import {
  closeSync,
  fdatasync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  read,
  readdirSync,
  readSync,
  rmSync,
  writev,
  writevSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { type RequestContext, throwIfAborted } from '../context/requestContext.js';
import { type Digest, digestKey, isEmptyDigest } from '../digest/digest.js';
import { lockDirectory } from '../util/directoryLock.js';
import { invalidArgument, notFound, resourceExhausted } from '../util/status.js';
import {
  type BatchItem,
  type Blob,
  type BlobStore,
  type BlobWriter,
  type FindMissingOptions,
  READ_CHUNK_BYTES,
  type StorageUsage,
} from './blobStore.js';
import type { EvictionListener } from './eviction.js';
import { bufferBlob } from './memoryBlobStore.js';
import { keyWordsOf, SegmentIndex, type SegmentLocation } from './segmentIndex.js';
import {
  decodeIndexFile,
  IndexEntries,
  identityOf,
  indexFileEntryCount,
  readIndexFile,
  writeIndexFile,
} from './segmentIndexFile.js';
import {
  decodeRecordHeader,
  digestOfRecordKey,
  encodeRecordHeader,
  RECORD_HEADER_BYTES,
  recordChecksumMatches,
} from './segmentRecord.js';

const readAsync = promisify(read);
const writevAsync = promisify(writev);
const fdatasyncAsync = promisify(fdatasync);

/** The largest segment a store starts (a larger record gets a segment of its own). */
const MAXIMUM_SEGMENT_BYTES = 128 * 1024 * 1024;
/** A store keeps at least this many segments' worth of room, so eviction frees a small share at a time. */
const SEGMENTS_PER_STORE = 32;
/** The largest blob this store takes (it is meant for small ones; the index holds 32-bit offsets). */
export const MAXIMUM_RECORD_BYTES = 256 * 1024 * 1024;
/** Blobs up to this size are read whole by get, so a later eviction cannot break the caller. */
const EAGER_READ_BYTES = 1024 * 1024;
/** How much of a segment the start-up scan reads at a time. */
const SCAN_WINDOW_BYTES = 8 * 1024 * 1024;
/** Buffers per writev call (below every platform's IOV_MAX). */
const BUFFERS_PER_WRITE = 512;

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

interface Segment {
  readonly id: number;
  readonly path: string;
  fd: number;
  /** Bytes assigned (written or being written). */
  sizeBytes: number;
  /** Asynchronous reads in flight; the file is closed when the last one ends after eviction. */
  readers: number;
  evicted: boolean;
  /** Its records in order, collected until it is sealed and its index file written. */
  entries: IndexEntries | undefined;
  /** Loaded from an index file: each record's CRC is checked when it is read. */
  checkReads: boolean;
}

/** A commit waiting to be appended. */
interface PendingRecord {
  readonly key: Uint32Array;
  readonly digest: Digest;
  readonly header: Buffer;
  readonly data: readonly Buffer[];
  readonly length: number;
  readonly crc: number;
  resolve(): void;
  reject(error: unknown): void;
}

export class SegmentBlobStore implements BlobStore {
  private readonly segments = new Map<number, Segment>();
  private current!: Segment;
  private usedBytes = 0;
  private pending: PendingRecord[] = [];
  /** The running append loop, if any. */
  private flushing: Promise<void> | undefined;
  /** Keys (digestKey) being copied forward, so a blob is copied once. */
  private readonly refreshing = new Set<string>();
  private readonly keyScratch = new Uint32Array(8);
  private readonly hexScratch = Buffer.alloc(32);
  private closed = false;
  /** Index files being written, one after the other. */
  private indexWrites: Promise<void> = Promise.resolve();

  private constructor(
    private readonly directory: string,
    readonly maximumSizeBytes: number,
    private readonly segmentBytes: number,
    private readonly synchronousIoBytes: number,
    private readonly index: SegmentIndex,
    private readonly onEviction: EvictionListener | undefined,
    private readonly unlock: () => void,
  ) {}

  /** Opens the store in `directory`; refused (DirectoryInUseError) while another process has it open. */
  static async open(options: SegmentBlobStoreOptions): Promise<SegmentBlobStore> {
    const segmentBytes =
      options.segmentBytes ??
      Math.max(1, Math.min(MAXIMUM_SEGMENT_BYTES, Math.floor(options.maximumSizeBytes / SEGMENTS_PER_STORE)));
    mkdirSync(options.directory, { recursive: true });
    const unlock = await lockDirectory(options.directory);
    const store = new SegmentBlobStore(
      options.directory,
      options.maximumSizeBytes,
      segmentBytes,
      options.synchronousIoBytes ?? DEFAULT_SYNCHRONOUS_IO_BYTES,
      new SegmentIndex(),
      options.onEviction,
      unlock,
    );
    try {
      store.load();
    } catch (error) {
      unlock();
      throw error;
    }
    return store;
  }

  /** Bytes of the index's tables (for the memory figures in docs/performance.md). */
  get indexMemoryBytes(): number {
    return this.index.memoryBytes;
  }

  usage(_context: RequestContext): StorageUsage {
    return { usedBytes: this.usedBytes, maximumBytes: this.maximumSizeBytes, blobCount: this.index.count };
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
    for (const segment of this.segments.values()) {
      if (segment.evicted || segment.sizeBytes === 0) continue;
      // Appends under way may not have reached the file yet: stop at its end.
      const bytes = Math.min(segment.sizeBytes, fstatSync(segment.fd).size);
      this.forEachRecord(segment, bytes, (digest, location) => {
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
        read: (offset, limit) => this.stream(context, digest, location, offset, limit),
      };
    }
    const data = await this.readData(digest, location);
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
    if (this.closed) return Promise.reject(new Error('the segment store is closed'));
    return new Promise((resolve, reject) => {
      let remaining = 1;
      let failed = false;
      const settled = () => {
        if (--remaining === 0 && !failed) resolve();
      };
      const failedWith = (error: unknown) => {
        if (failed) return;
        failed = true;
        reject(error);
      };
      for (const { digest, data } of items) {
        if (isEmptyDigest(digest)) continue;
        if (this.enqueue(digest, [data], settled, failedWith)) remaining++;
      }
      settled();
    });
  }

  /** Waits for the appends and index files under way, then closes the segment files. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.closed = true;
    await this.indexWrites;
    for (const segment of this.segments.values()) this.release(segment);
    this.unlock();
  }

  /** @internal Appends a committed blob; resolves once it is written and visible. */
  append(digest: Digest, data: readonly Buffer[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the segment store is closed'));
    return new Promise((resolve, reject) => {
      if (!this.enqueue(digest, data, resolve, reject)) resolve();
    });
  }

  /**
   * Queues a record for the next write; `resolve` or `reject` is called once it
   * is written and visible or has failed. Returns false, calling neither, when
   * the same bytes are already stored under the key (a CAS blob uploaded twice).
   */
  private enqueue(
    digest: Digest,
    data: readonly Buffer[],
    resolve: () => void,
    reject: (error: unknown) => void,
  ): boolean {
    const key = new Uint32Array(8);
    keyWordsOf(digest, key, this.hexScratch);
    const { header, crc } = encodeRecordHeader(digestKey(digest), data);
    let length = header.length;
    for (const chunk of data) length += chunk.length;
    const existing = this.index.get(key, digest.sizeBytes);
    if (existing && existing.crc === crc && existing.length === length - header.length) return false;
    this.pending.push({ key, digest, header, data, length, crc, resolve, reject });
    this.flushing ??= this.flush();
    return true;
  }

  private locate(digest: Digest): SegmentLocation | undefined {
    keyWordsOf(digest, this.keyScratch, this.hexScratch);
    return this.index.get(this.keyScratch, digest.sizeBytes);
  }

  /** Segments below this number are in the oldest quarter (the oldest half for a retained blob). */
  private refreshBelow(retainUntilMs = 0): number {
    const oldest = this.index.oldestSegment;
    return oldest + Math.floor((this.current.id - oldest + 1) / (retainUntilMs > 0 ? 2 : 4));
  }

  private refreshInBackground(digest: Digest, location: SegmentLocation): void {
    if (location.length > EAGER_READ_BYTES || this.refreshing.has(digestKey(digest))) return;
    this.readData(digest, location).then(
      (data) => data && this.copyForward(digest, data),
      () => undefined, // evicted meanwhile: nothing to keep
    );
  }

  private copyForward(digest: Digest, data: Buffer): void {
    const key = digestKey(digest);
    if (this.refreshing.has(key) || this.closed) return;
    this.refreshing.add(key);
    const location = this.locate(digest);
    if (!location || location.segment >= this.refreshBelow()) {
      this.refreshing.delete(key);
      return;
    }
    const words = new Uint32Array(this.keyScratch);
    const { header, crc } = encodeRecordHeader(key, [data]);
    const done = () => this.refreshing.delete(key);
    this.pending.push({
      key: words,
      digest,
      header,
      data: [data],
      length: header.length + data.length,
      crc,
      resolve: done,
      reject: done,
    });
    this.flushing ??= this.flush();
  }

  /** Appends pending records until none are left; commits that arrive meanwhile go in the next round. */
  private async flush(): Promise<void> {
    // Let the commits of the same turn of the event loop join the first write.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        let run: PendingRecord[] = [];
        let runStart = this.current.sizeBytes;
        for (const record of batch) {
          if (record.length > this.maximumSizeBytes || record.length - record.header.length > MAXIMUM_RECORD_BYTES) {
            record.reject(
              resourceExhausted(`blob of ${record.length} bytes exceeds the storage limit of ${this.maximumSizeBytes}`),
            );
            continue;
          }
          const current = this.current;
          const rolls = current.sizeBytes > 0 && current.sizeBytes + record.length > this.segmentBytes;
          // Written before a roll or an eviction, which may delete the segment they are assigned to.
          if (rolls || this.usedBytes + record.length > this.maximumSizeBytes) {
            await this.writeRun(current, runStart, run);
            run = [];
            try {
              if (rolls) this.startSegment();
              this.makeRoom(record.length);
            } catch (error) {
              // A new segment file could not be created: this record fails, the next one tries again.
              record.reject(error);
              continue;
            } finally {
              runStart = this.current.sizeBytes;
            }
          }
          run.push(record);
          this.current.sizeBytes += record.length;
          this.usedBytes += record.length;
        }
        await this.writeRun(this.current, runStart, run);
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /** Writes records assigned contiguously from `start`, then makes them visible (or fails them all). */
  private async writeRun(segment: Segment, start: number, run: readonly PendingRecord[]): Promise<void> {
    if (run.length === 0) return;
    let total = 0;
    const buffers: Buffer[] = [];
    for (const record of run) {
      total += record.length;
      buffers.push(record.header, ...record.data);
    }
    try {
      let position = start;
      for (let first = 0; first < buffers.length; first += BUFFERS_PER_WRITE) {
        const group = buffers.slice(first, first + BUFFERS_PER_WRITE);
        let groupBytes = 0;
        for (const buffer of group) groupBytes += buffer.length;
        const written =
          total <= this.synchronousIoBytes
            ? writevSync(segment.fd, group, position)
            : (await writevAsync(segment.fd, group, position)).bytesWritten;
        if (written !== groupBytes)
          throw new Error(`short write to ${segment.path}: ${written} of ${groupBytes} bytes`);
        position += groupBytes;
      }
    } catch (error) {
      // Nothing of the run becomes visible; the next append overwrites what part of it reached the file.
      if (!segment.evicted) {
        segment.sizeBytes = start;
        this.usedBytes -= total;
      }
      for (const record of run) record.reject(error);
      return;
    }
    let offset = start;
    for (const record of run) {
      const location = {
        segment: segment.id,
        offset: offset + record.header.length,
        length: record.length - record.header.length,
        crc: record.crc,
      };
      this.index.set(record.key, record.digest.sizeBytes, location);
      segment.entries?.add(record.key, record.digest.sizeBytes, location);
      offset += record.length;
      record.resolve();
    }
  }

  /** Deletes the oldest segments until `incomingBytes` more fit. */
  private makeRoom(incomingBytes: number): void {
    while (this.usedBytes + incomingBytes > this.maximumSizeBytes) {
      const oldest = this.segments.values().next().value as Segment;
      if (oldest === this.current) {
        // Only the current segment is left: it goes too, and a new one starts.
        if (this.current.sizeBytes === 0) return;
        this.startSegment();
        continue;
      }
      this.evict(oldest, incomingBytes);
    }
  }

  private evict(segment: Segment, incomingBytes: number): void {
    const usedBeforeBytes = this.usedBytes;
    this.segments.delete(segment.id);
    const blobs = this.index.count;
    this.index.dropSegmentsBefore(segment.id + 1);
    this.usedBytes -= segment.sizeBytes;
    segment.evicted = true;
    this.release(segment);
    // Synchronous, once per segment: the files on disk never exceed the bound, even for a moment.
    rmSync(segment.path, { force: true });
    rmSync(this.indexPathOf(segment.id), { force: true });
    try {
      this.onEviction?.({
        blobs: blobs - this.index.count,
        bytes: usedBeforeBytes - this.usedBytes,
        incomingBytes,
        usedBytes: this.usedBytes,
        maximumBytes: this.maximumSizeBytes,
      });
    } catch {
      // A listener's failure must not fail the write.
    }
  }

  /** Closes a segment's file unless reads are still using it (the last of them closes it). */
  private release(segment: Segment): void {
    if (segment.readers > 0 || segment.fd < 0) return;
    closeSync(segment.fd);
    segment.fd = -1;
  }

  private startSegment(): void {
    const id = this.current ? this.current.id + 1 : 1;
    const path = this.pathOf(id);
    // Left by a segment of that number deleted behind the store's back: it would describe another file.
    rmSync(this.indexPathOf(id), { force: true });
    const segment = newSegment(id, path, openSync(path, 'w+'));
    segment.entries = new IndexEntries();
    if (this.current) this.seal(this.current);
    this.segments.set(id, segment);
    this.current = segment;
  }

  /** A segment no longer appended to: its index file is written in the background. */
  private seal(segment: Segment): void {
    const entries = segment.entries;
    segment.entries = undefined;
    if (!entries) return;
    const sizeBytes = segment.sizeBytes;
    this.indexWrites = this.indexWrites.then(() =>
      this.writeIndex(segment, entries, sizeBytes).catch(() => {
        // No index file: the next opening scans the segment, as before index files.
      }),
    );
  }

  /** Makes the sealed segment durable, then writes its index file (temporary name, fsync, rename). */
  private async writeIndex(segment: Segment, entries: IndexEntries, sizeBytes: number): Promise<void> {
    if (segment.evicted || segment.fd < 0) return;
    const path = this.indexPathOf(segment.id);
    const temporaryPath = `${path}.tmp`;
    segment.readers++;
    try {
      // A failed write may have left bytes after the last record.
      if (fstatSync(segment.fd).size > sizeBytes) ftruncateSync(segment.fd, sizeBytes);
      await fdatasyncAsync(segment.fd);
      if (segment.evicted) return;
      const file = entries.encode(identityOf(segment.id, fstatSync(segment.fd, { bigint: true })));
      await writeIndexFile(path, temporaryPath, file);
    } finally {
      segment.readers--;
      // Evicted meanwhile: its index file goes too.
      if (segment.evicted) {
        rmSync(temporaryPath, { force: true });
        rmSync(path, { force: true });
        this.release(segment);
      }
    }
  }

  private pathOf(id: number): string {
    return join(this.directory, `${String(id).padStart(10, '0')}.seg`);
  }

  private indexPathOf(id: number): string {
    return join(this.directory, `${String(id).padStart(10, '0')}.idx`);
  }

  /**
   * A record's data, its CRC checked first when its segment was loaded from an
   * index file; undefined (and the entry dropped) when the check fails.
   */
  private async readData(digest: Digest, location: SegmentLocation): Promise<Buffer | undefined> {
    const segment = this.segments.get(location.segment);
    if (!segment?.checkReads) return this.readAt(location, location.offset, location.length);
    const start = location.offset - RECORD_HEADER_BYTES - Buffer.byteLength(digestKey(digest), 'latin1');
    if (start >= 0) {
      const record = await this.readAt(location, start, location.offset + location.length - start);
      if (recordChecksumMatches(record, location.crc)) return record.subarray(location.offset - start);
    }
    this.dropCorrupt(digest);
    return undefined;
  }

  private dropCorrupt(digest: Digest): void {
    const key = new Uint32Array(8);
    keyWordsOf(digest, key, this.hexScratch);
    this.index.delete(key, digest.sizeBytes);
  }

  /** Reads `length` bytes of a live record's segment at `position`. */
  private async readAt(location: SegmentLocation, position: number, length: number): Promise<Buffer> {
    const segment = this.segments.get(location.segment);
    if (!segment || segment.evicted) throw notFound(`blob in segment ${location.segment} was evicted`);
    const buffer = Buffer.allocUnsafe(length);
    if (length <= this.synchronousIoBytes) {
      readFully(segment, buffer, position);
      return buffer;
    }
    segment.readers++;
    try {
      for (let done = 0; done < length; ) {
        const { bytesRead } = await readAsync(segment.fd, buffer, done, length - done, position + done);
        if (bytesRead === 0) throw notFound(`${segment.path} is shorter than its index says`);
        done += bytesRead;
      }
    } finally {
      segment.readers--;
      if (segment.evicted) this.release(segment);
    }
    return buffer;
  }

  private async *stream(
    context: RequestContext,
    digest: Digest,
    location: SegmentLocation,
    offset = 0,
    limit?: number,
  ): AsyncGenerator<Buffer> {
    const end = limit === undefined ? location.length : Math.min(location.length, offset + limit);
    // A whole read of a record that was not checked at opening checks its CRC on the way (a part cannot be checked).
    let crc: number | undefined;
    if (this.segments.get(location.segment)?.checkReads && offset === 0 && end === location.length) {
      const start = location.offset - RECORD_HEADER_BYTES - Buffer.byteLength(digestKey(digest), 'latin1');
      const head = await this.readAt(location, start, location.offset - start);
      crc = crc32(head.subarray(8));
    }
    for (let position = offset; position < end; ) {
      throwIfAborted(context);
      const length = Math.min(READ_CHUNK_BYTES, end - position);
      const chunk = await this.readAt(location, location.offset + position, length);
      position += length;
      if (crc !== undefined) {
        crc = crc32(chunk, crc);
        if (position === end && crc !== location.crc) {
          this.dropCorrupt(digest);
          throw notFound(`blob ${digestKey(digest)} in segment ${location.segment} failed its CRC check`);
        }
      }
      yield chunk;
    }
  }

  /**
   * Opens every segment, loading the index files of the sealed ones and reading
   * the others (see the module comment), and starts appending to the newest.
   */
  private load(): void {
    const names = readdirSync(this.directory);
    const numbered = (pattern: RegExp) =>
      names
        .map((name) => pattern.exec(name)?.[1])
        .filter((id): id is string => id !== undefined)
        .map(Number)
        .sort((a, b) => a - b);
    const ids = numbered(/^(\d{10})\.seg$/);
    const newest = ids.at(-1);
    // Index files cut short by a crash, of segments gone, or of the segment appended to (it is read whole).
    for (const name of names) if (name.endsWith('.idx.tmp')) rmSync(join(this.directory, name), { force: true });
    const sealed = new Set(ids.slice(0, -1));
    for (const id of numbered(/^(\d{10})\.idx$/)) {
      if (!sealed.has(id)) rmSync(this.indexPathOf(id), { force: true });
    }
    let expectedEntries = 0;
    for (const id of sealed) expectedEntries += indexFileEntryCount(this.indexPathOf(id));
    this.index.reserve(expectedEntries);
    if (ids.length > 0) this.index.dropSegmentsBefore(ids[0] as number);
    const unindexed: Segment[] = [];
    for (const id of ids) {
      const segment = newSegment(id, this.pathOf(id), openSync(this.pathOf(id), 'r+'));
      if (id === newest || !this.loadIndexFile(segment)) {
        segment.entries = new IndexEntries();
        segment.sizeBytes = this.scan(segment);
        if (id !== newest) unindexed.push(segment);
      }
      this.segments.set(id, segment);
      this.usedBytes += segment.sizeBytes;
      this.current = segment;
    }
    if (ids.length === 0) this.startSegment();
    // A bound lowered since the last run: drop the oldest segments now.
    this.makeRoom(0);
    for (const segment of unindexed) this.seal(segment);
  }

  /** Indexes a sealed segment from its index file; false when there is none that matches the segment. */
  private loadIndexFile(segment: Segment): boolean {
    const file = readIndexFile(this.indexPathOf(segment.id));
    if (!file) return false;
    const identity = identityOf(segment.id, fstatSync(segment.fd, { bigint: true }));
    const loaded = decodeIndexFile(file, identity, (key, sizeBytes, location) =>
      this.index.set(key, sizeBytes, location),
    );
    if (!loaded) return false;
    segment.sizeBytes = identity.lengthBytes;
    segment.checkReads = true;
    return true;
  }

  /** Indexes a segment's records; truncates it after the last whole record. Returns its new size. */
  private scan(segment: Segment): number {
    const fileBytes = fstatSync(segment.fd).size;
    const key = new Uint32Array(8);
    const end = this.forEachRecord(segment, fileBytes, (digest, location) => {
      keyWordsOf(digest, key, this.hexScratch);
      this.index.set(key, digest.sizeBytes, location);
      segment.entries?.add(key, digest.sizeBytes, location);
    });
    if (end < fileBytes) ftruncateSync(segment.fd, end);
    return end;
  }

  /**
   * Calls `visit` for each whole record of a segment's first `bytes`, in order,
   * up to the first that does not check out; returns where that one starts.
   */
  private forEachRecord(
    segment: Segment,
    bytes: number,
    visit: (digest: Digest, location: SegmentLocation) => void,
  ): number {
    let window = Buffer.alloc(0);
    let windowStart = 0;
    const bytesAt = (position: number, length: number): Buffer | undefined => {
      if (position + length > bytes) return undefined;
      if (position < windowStart || position + length > windowStart + window.length) {
        window = Buffer.allocUnsafe(Math.min(Math.max(length, SCAN_WINDOW_BYTES), bytes - position));
        windowStart = position;
        readFully(segment, window, position);
      }
      return window.subarray(position - windowStart, position - windowStart + length);
    };
    let position = 0;
    while (position < bytes) {
      const header = bytesAt(position, RECORD_HEADER_BYTES);
      const fields = header && decodeRecordHeader(header);
      const record = fields && bytesAt(position, fields.recordLength);
      if (!fields || !record || !recordChecksumMatches(record, fields.crc)) break;
      const digest = digestOfRecordKey(
        record.toString('latin1', RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + fields.keyLength),
      );
      if (!digest) break;
      const offset = position + RECORD_HEADER_BYTES + fields.keyLength;
      visit(digest, { segment: segment.id, offset, length: fields.dataLength, crc: fields.crc });
      position += fields.recordLength;
    }
    return position;
  }
}

function newSegment(id: number, path: string, fd: number): Segment {
  return { id, path, fd, sizeBytes: 0, readers: 0, evicted: false, entries: undefined, checkReads: false };
}

function readFully(segment: Segment, buffer: Buffer, position: number): void {
  for (let done = 0; done < buffer.length; ) {
    const bytesRead = readSync(segment.fd, buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) throw notFound(`${segment.path} is shorter than its index says`);
    done += bytesRead;
  }
}

/** Holds a blob's chunks in memory until commit appends them as one record. */
class SegmentBlobWriter implements BlobWriter {
  private chunks: Buffer[] = [];
  private sizeBytes = 0;
  private finished = false;

  constructor(
    private readonly store: SegmentBlobStore,
    private readonly digest: Digest,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    if (this.finished) throw invalidArgument('write after the blob was committed or aborted');
    this.sizeBytes += chunk.length;
    if (this.sizeBytes > MAXIMUM_RECORD_BYTES) {
      throw resourceExhausted(`blob of over ${MAXIMUM_RECORD_BYTES} bytes is too large for a segment store`);
    }
    this.chunks.push(chunk);
  }

  async commit(): Promise<void> {
    if (this.finished) throw invalidArgument('blob already committed or aborted');
    this.finished = true;
    const chunks = this.chunks;
    this.chunks = [];
    await this.store.append(this.digest, chunks);
  }

  async abort(): Promise<void> {
    this.finished = true;
    this.chunks = [];
  }
}
