/**
 * The write path of a SegmentBlobStore: commits are queued and the ones that
 * arrive together are appended to the current segment with one writev (up to
 * BUFFERS_PER_WRITE buffers), rolling to a new segment or evicting old ones on
 * the way. A record becomes visible in the index only after its write returned,
 * so nothing half-written is ever served (see segmentBlobStore.ts).
 */
import { writev, writevSync } from 'node:fs';
import { promisify } from 'node:util';
import { type Digest, digestKey, isEmptyDigest } from '../digest/digest.js';
import { invalidArgument, resourceExhausted } from '../util/status.js';
import type { BatchItem, BlobWriter } from './blobStore.js';
import type { Segment, SegmentFiles } from './segmentFiles.js';
import { keyWordsOf } from './segmentIndex.js';
import { encodeRecordHeader } from './segmentRecord.js';

const writevAsync = promisify(writev);

/** The largest blob this store takes (it is meant for small ones; the index holds 32-bit offsets). */
export const MAXIMUM_RECORD_BYTES = 256 * 1024 * 1024;
/** Buffers per writev call (below every platform's IOV_MAX). */
const BUFFERS_PER_WRITE = 512;

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

/** Appends records to the segment files of one store, batching the commits that arrive together. */
export class SegmentAppender {
  private pending: PendingRecord[] = [];
  /** The running append loop, if any. */
  private flushing: Promise<void> | undefined;
  private readonly hexScratch = Buffer.alloc(32);
  closed = false;

  constructor(
    private readonly files: SegmentFiles,
    private readonly synchronousIoBytes: number,
  ) {}

  /** Waits for the appends under way, then refuses new ones. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.closed = true;
  }

  /** Appends a committed blob; resolves once it is written and visible. */
  append(digest: Digest, data: readonly Buffer[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the segment store is closed'));
    return new Promise((resolve, reject) => {
      if (!this.enqueue(digest, data, resolve, reject)) resolve();
    });
  }

  /** SegmentBlobStore.putBatch: the records join one write; resolves once all are written, fails if any fails. */
  appendBatch(items: readonly BatchItem[]): Promise<void> {
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

  /**
   * Queues a copy of a stored blob (a copy forward, see SegmentBlobStore), even
   * when the same bytes are stored under the key; `done` is called once it is
   * written or has failed. `key` holds the digest's key words.
   */
  appendCopy(digest: Digest, key: Uint32Array, data: Buffer, done: () => void): void {
    const { header, crc } = encodeRecordHeader(digestKey(digest), [data]);
    this.pending.push({
      key,
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
    const existing = this.files.index.get(key, digest.sizeBytes);
    if (existing && existing.crc === crc && existing.length === length - header.length) return false;
    this.pending.push({ key, digest, header, data, length, crc, resolve, reject });
    this.flushing ??= this.flush();
    return true;
  }

  /** Appends pending records until none are left; commits that arrive meanwhile go in the next round. */
  private async flush(): Promise<void> {
    const files = this.files;
    // Let the commits of the same turn of the event loop join the first write.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        let run: PendingRecord[] = [];
        let runStart = files.current.sizeBytes;
        for (const record of batch) {
          if (record.length > files.maximumSizeBytes || record.length - record.header.length > MAXIMUM_RECORD_BYTES) {
            record.reject(
              resourceExhausted(
                `blob of ${record.length} bytes exceeds the storage limit of ${files.maximumSizeBytes}`,
              ),
            );
            continue;
          }
          const current = files.current;
          const rolls = current.sizeBytes > 0 && current.sizeBytes + record.length > files.segmentBytes;
          // Written before a roll or an eviction, which may delete the segment they are assigned to.
          if (rolls || files.usedBytes + record.length > files.maximumSizeBytes) {
            await this.writeRun(current, runStart, run);
            run = [];
            try {
              if (rolls) files.startSegment();
              files.makeRoom(record.length);
            } catch (error) {
              // A new segment file could not be created: this record fails, the next one tries again.
              record.reject(error);
              continue;
            } finally {
              runStart = files.current.sizeBytes;
            }
          }
          run.push(record);
          files.current.sizeBytes += record.length;
          files.usedBytes += record.length;
        }
        await this.writeRun(files.current, runStart, run);
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
        this.files.usedBytes -= total;
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
      this.files.index.set(record.key, record.digest.sizeBytes, location);
      segment.entries?.add(record.key, record.digest.sizeBytes, location);
      offset += record.length;
      record.resolve();
    }
  }
}

/** Holds a blob's chunks in memory until commit appends them as one record. */
export class SegmentBlobWriter implements BlobWriter {
  private chunks: Buffer[] = [];
  private sizeBytes = 0;
  private finished = false;

  constructor(
    private readonly store: { append(digest: Digest, data: readonly Buffer[]): Promise<void> },
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
