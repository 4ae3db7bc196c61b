/**
 * Opening a SegmentBlobStore's directory: the index file of each sealed segment
 * that matches it is loaded, and the other segments (the one being appended to,
 * a sealed one whose index file is missing, stale or corrupt) are read from the
 * start, record by record, and truncated at the first record that does not check
 * out (the torn tail of a crash). See segmentBlobStore.ts for why this is safe.
 */
import { fstatSync, ftruncateSync, openSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Digest } from '../digest/digest.js';
import { newSegment, readFully, type Segment, type SegmentFiles } from './segmentFiles.js';
import { keyWordsOf, type SegmentLocation } from './segmentIndex.js';
import { decodeIndexFile, IndexEntries, identityOf, indexFileEntryCount, readIndexFile } from './segmentIndexFile.js';
import { decodeRecordHeader, digestOfRecordKey, RECORD_HEADER_BYTES, recordChecksumMatches } from './segmentRecord.js';

/** How much of a segment the start-up scan reads at a time. */
const SCAN_WINDOW_BYTES = 8 * 1024 * 1024;

/**
 * Opens every segment, loading the index files of the sealed ones and reading
 * the others (see the module comment), and starts appending to the newest.
 */
export function loadSegments(files: SegmentFiles): void {
  const names = readdirSync(files.directory);
  const numbered = (pattern: RegExp) =>
    names
      .map((name) => pattern.exec(name)?.[1])
      .filter((id): id is string => id !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  const ids = numbered(/^(\d{10})\.seg$/);
  const newest = ids.at(-1);
  // Index files cut short by a crash, of segments gone, or of the segment appended to (it is read whole).
  for (const name of names) if (name.endsWith('.idx.tmp')) rmSync(join(files.directory, name), { force: true });
  const sealed = new Set(ids.slice(0, -1));
  for (const id of numbered(/^(\d{10})\.idx$/)) {
    if (!sealed.has(id)) rmSync(files.indexPathOf(id), { force: true });
  }
  let expectedEntries = 0;
  for (const id of sealed) expectedEntries += indexFileEntryCount(files.indexPathOf(id));
  files.index.reserve(expectedEntries);
  if (ids.length > 0) files.index.dropSegmentsBefore(ids[0] as number);
  const unindexed: Segment[] = [];
  for (const id of ids) {
    const segment = newSegment(id, files.pathOf(id), openSync(files.pathOf(id), 'r+'));
    if (id === newest || !loadIndexFile(files, segment)) {
      segment.entries = new IndexEntries();
      segment.sizeBytes = scan(files, segment);
      if (id !== newest) unindexed.push(segment);
    }
    files.segments.set(id, segment);
    files.usedBytes += segment.sizeBytes;
    files.current = segment;
  }
  if (ids.length === 0) files.startSegment();
  // A bound lowered since the last run: drop the oldest segments now.
  files.makeRoom(0);
  for (const segment of unindexed) files.seal(segment);
}

/** Indexes a sealed segment from its index file; false when there is none that matches the segment. */
function loadIndexFile(files: SegmentFiles, segment: Segment): boolean {
  const file = readIndexFile(files.indexPathOf(segment.id));
  if (!file) return false;
  const identity = identityOf(segment.id, fstatSync(segment.fd, { bigint: true }));
  const loaded = decodeIndexFile(file, identity, (key, sizeBytes, location) =>
    files.index.set(key, sizeBytes, location),
  );
  if (!loaded) return false;
  segment.sizeBytes = identity.lengthBytes;
  segment.checkReads = true;
  return true;
}

/** Indexes a segment's records; truncates it after the last whole record. Returns its new size. */
function scan(files: SegmentFiles, segment: Segment): number {
  const fileBytes = fstatSync(segment.fd).size;
  const key = new Uint32Array(8);
  const hexScratch = Buffer.alloc(32);
  const end = forEachRecord(segment, fileBytes, (digest, location) => {
    keyWordsOf(digest, key, hexScratch);
    files.index.set(key, digest.sizeBytes, location);
    segment.entries?.add(key, digest.sizeBytes, location);
  });
  if (end < fileBytes) ftruncateSync(segment.fd, end);
  return end;
}

/**
 * Calls `visit` for each whole record of a segment's first `bytes`, in order,
 * up to the first that does not check out; returns where that one starts.
 */
export function forEachRecord(
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
