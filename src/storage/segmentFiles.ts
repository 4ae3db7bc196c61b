/**
 * The segment files of one SegmentBlobStore and their life: starting a segment,
 * sealing it (fsync, then its index file in the background), and evicting the
 * oldest ones whole to stay within the size bound. The state shared by the
 * store's opening (segmentRecovery.ts), appends (segmentAppender.ts) and reads
 * (segmentReader.ts) lives here, so each of those modules depends on this one
 * and on nothing else of the store. See segmentBlobStore.ts for the layout,
 * durability and eviction rules as a whole.
 */
import { closeSync, fdatasync, fstatSync, ftruncateSync, openSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { notFound } from '../util/status.js';
import type { EvictionListener } from './eviction.js';
import type { SegmentIndex } from './segmentIndex.js';
import { IndexEntries, identityOf, writeIndexFile } from './segmentIndexFile.js';

const fdatasyncAsync = promisify(fdatasync);

/** One segment file, open while it is stored (or read from after its eviction). */
export interface Segment {
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

/** The segments of a store, oldest first, with the index of their records and the bytes they hold. */
export class SegmentFiles {
  readonly segments = new Map<number, Segment>();
  current!: Segment;
  usedBytes = 0;
  /** Index files being written, one after the other. */
  indexWrites: Promise<void> = Promise.resolve();

  constructor(
    readonly directory: string,
    readonly maximumSizeBytes: number,
    readonly segmentBytes: number,
    readonly index: SegmentIndex,
    private readonly onEviction: EvictionListener | undefined,
  ) {}

  /** Waits for the index files under way, then closes the segment files. */
  async close(): Promise<void> {
    await this.indexWrites;
    for (const segment of this.segments.values()) this.release(segment);
  }

  /** Deletes the oldest segments until `incomingBytes` more fit. */
  makeRoom(incomingBytes: number): void {
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
  release(segment: Segment): void {
    if (segment.readers > 0 || segment.fd < 0) return;
    closeSync(segment.fd);
    segment.fd = -1;
  }

  /** Starts the next segment and seals the current one. */
  startSegment(): void {
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
  seal(segment: Segment): void {
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

  pathOf(id: number): string {
    return join(this.directory, `${String(id).padStart(10, '0')}.seg`);
  }

  indexPathOf(id: number): string {
    return join(this.directory, `${String(id).padStart(10, '0')}.idx`);
  }
}

/** A segment of no records yet, as opened (its size and entries are set by whoever opens it). */
export function newSegment(id: number, path: string, fd: number): Segment {
  return { id, path, fd, sizeBytes: 0, readers: 0, evicted: false, entries: undefined, checkReads: false };
}

/** Reads `buffer.length` bytes at `position` synchronously (the start-up scan and small reads). */
export function readFully(segment: Segment, buffer: Buffer, position: number): void {
  for (let done = 0; done < buffer.length; ) {
    const bytesRead = readSync(segment.fd, buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) throw notFound(`${segment.path} is shorter than its index says`);
    done += bytesRead;
  }
}
