/**
 * Reads of a SegmentBlobStore's records, whole or streamed, with the CRC check
 * owed to a record of a segment whose index file was loaded at opening (its
 * records were not read then): a record that fails is dropped from the index and
 * reported missing, so no record is served whose CRC was not checked since the
 * store opened (see segmentBlobStore.ts).
 */
import { read } from 'node:fs';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { type RequestContext, throwIfAborted } from '../context/requestContext.js';
import { type Digest, digestKey } from '../digest/digest.js';
import { notFound } from '../util/status.js';
import { READ_CHUNK_BYTES } from './blobStore.js';
import { readFully, type SegmentFiles } from './segmentFiles.js';
import { keyWordsOf, type SegmentLocation } from './segmentIndex.js';
import { RECORD_HEADER_BYTES, recordChecksumMatches } from './segmentRecord.js';

const readAsync = promisify(read);

/** Reads records out of the segment files of one store. */
export class SegmentReader {
  private readonly hexScratch = Buffer.alloc(32);

  constructor(
    private readonly files: SegmentFiles,
    private readonly synchronousIoBytes: number,
  ) {}

  /**
   * A record's data, its CRC checked first when its segment was loaded from an
   * index file; undefined (and the entry dropped) when the check fails.
   */
  async readData(digest: Digest, location: SegmentLocation): Promise<Buffer | undefined> {
    const segment = this.files.segments.get(location.segment);
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
    this.files.index.delete(key, digest.sizeBytes);
  }

  /** Reads `length` bytes of a live record's segment at `position`. */
  private async readAt(location: SegmentLocation, position: number, length: number): Promise<Buffer> {
    const segment = this.files.segments.get(location.segment);
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
      if (segment.evicted) this.files.release(segment);
    }
    return buffer;
  }

  /** A record's data from `offset`, at most `limit` bytes, a chunk at a time (for a blob too large to read whole). */
  async *stream(
    context: RequestContext,
    digest: Digest,
    location: SegmentLocation,
    offset = 0,
    limit?: number,
  ): AsyncGenerator<Buffer> {
    const end = limit === undefined ? location.length : Math.min(location.length, offset + limit);
    // A whole read of a record that was not checked at opening checks its CRC on the way (a part cannot be checked).
    let crc: number | undefined;
    if (this.files.segments.get(location.segment)?.checkReads && offset === 0 && end === location.length) {
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
}
