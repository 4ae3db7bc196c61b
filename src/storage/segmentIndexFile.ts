/**
 * The index file of a sealed segment (`<number>.idx` beside `<number>.seg`):
 * the segment's records as SegmentIndex entries, so opening a store reads a few
 * bytes per record instead of every record's data (a store of 10 GiB of 4 KiB
 * blobs took 49 s to open by scanning its segments). Only a segment that is no
 * longer appended to gets one, written under a temporary name, fsync'ed and
 * renamed, after the segment itself was fsync'ed, so a killed process leaves
 * either a whole index file or none (the segment is then scanned as before).
 *
 *   0  u32  magic 'GRX1'
 *   4  u32  CRC-32 of everything after this field
 *   8  u32  segment number
 *   12 u32  entry count
 *   16 f64  the segment file's length when sealed
 *   24 u64  the segment file's inode number
 *   32 u64  the segment file's birth time, ns (as fstat reports it)
 *   40      zeros up to 64
 *   64      entries of 52 bytes: the 8 key words (u32 each, see keyWordsOf),
 *           size (f64), data offset, data length, record CRC (u32 each)
 *
 * Integers are little-endian. An index file whose magic, CRC, segment number,
 * length, inode or birth time does not match its segment is stale, truncated
 * or corrupt: the segment is scanned instead and the file written again.
 */
import { type BigIntStats, closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { SegmentLocation } from './segmentIndex.js';

const INDEX_MAGIC = 0x31585247; // 'GRX1' read as a little-endian u32
export const INDEX_HEADER_BYTES = 64;
export const INDEX_ENTRY_BYTES = 52;
const KEY_WORDS = 8;

/** What ties an index file to the segment file it describes. */
export interface SegmentIdentity {
  segment: number;
  lengthBytes: number;
  inode: bigint;
  birthTimeNs: bigint;
}

/** The identity of a segment file from its fstat (with bigint: true). */
export function identityOf(segment: number, stats: BigIntStats): SegmentIdentity {
  return { segment, lengthBytes: Number(stats.size), inode: stats.ino, birthTimeNs: stats.birthtimeNs };
}

/** Collects a segment's entries, in the order of its records, while the segment is appended to. */
export class IndexEntries {
  private buffer = Buffer.allocUnsafe(INDEX_HEADER_BYTES + 64 * INDEX_ENTRY_BYTES);
  private used = INDEX_HEADER_BYTES;

  get count(): number {
    return (this.used - INDEX_HEADER_BYTES) / INDEX_ENTRY_BYTES;
  }

  add(key: Uint32Array, sizeBytes: number, location: SegmentLocation): void {
    if (this.used + INDEX_ENTRY_BYTES > this.buffer.length) {
      const larger = Buffer.allocUnsafe(this.buffer.length * 2);
      this.buffer.copy(larger, 0, 0, this.used);
      this.buffer = larger;
    }
    let at = this.used;
    for (let i = 0; i < KEY_WORDS; i++, at += 4) this.buffer.writeUInt32LE(key[i] as number, at);
    this.buffer.writeDoubleLE(sizeBytes, at);
    this.buffer.writeUInt32LE(location.offset, at + 8);
    this.buffer.writeUInt32LE(location.length, at + 12);
    this.buffer.writeUInt32LE(location.crc, at + 16);
    this.used += INDEX_ENTRY_BYTES;
  }

  /** The whole index file for a segment of this identity. */
  encode(identity: SegmentIdentity): Buffer {
    const file = this.buffer.subarray(0, this.used);
    file.fill(0, 0, INDEX_HEADER_BYTES);
    file.writeUInt32LE(INDEX_MAGIC, 0);
    file.writeUInt32LE(identity.segment, 8);
    file.writeUInt32LE(this.count, 12);
    file.writeDoubleLE(identity.lengthBytes, 16);
    file.writeBigUInt64LE(identity.inode, 24);
    file.writeBigUInt64LE(identity.birthTimeNs, 32);
    file.writeUInt32LE(crc32(file.subarray(8)), 4);
    return file;
  }
}

/** Calls `visit` for each entry of an index file that checks out against `identity`; false (and no call) when it does not. */
export function decodeIndexFile(
  file: Buffer,
  identity: SegmentIdentity,
  visit: (key: Uint32Array, sizeBytes: number, location: SegmentLocation) => void,
): boolean {
  if (file.length < INDEX_HEADER_BYTES || file.readUInt32LE(0) !== INDEX_MAGIC) return false;
  const count = file.readUInt32LE(12);
  if (file.length !== INDEX_HEADER_BYTES + count * INDEX_ENTRY_BYTES) return false;
  if (
    file.readUInt32LE(8) !== identity.segment ||
    file.readDoubleLE(16) !== identity.lengthBytes ||
    file.readBigUInt64LE(24) !== identity.inode ||
    file.readBigUInt64LE(32) !== identity.birthTimeNs
  ) {
    return false;
  }
  if (crc32(file.subarray(8)) !== file.readUInt32LE(4)) return false;
  // Checked whole before any entry is used, so a bad file adds nothing to the index.
  for (let at = INDEX_HEADER_BYTES; at < file.length; at += INDEX_ENTRY_BYTES) {
    const end = file.readUInt32LE(at + 40) + file.readUInt32LE(at + 44);
    if (end > identity.lengthBytes) return false;
  }
  const key = new Uint32Array(KEY_WORDS);
  const location: SegmentLocation = { segment: identity.segment, offset: 0, length: 0, crc: 0 };
  for (let at = INDEX_HEADER_BYTES; at < file.length; at += INDEX_ENTRY_BYTES) {
    for (let i = 0; i < KEY_WORDS; i++) key[i] = file.readUInt32LE(at + i * 4);
    location.offset = file.readUInt32LE(at + 40);
    location.length = file.readUInt32LE(at + 44);
    location.crc = file.readUInt32LE(at + 48);
    visit(key, file.readDoubleLE(at + 32), location);
  }
  return true;
}

/** The entry count an index file's header claims (to size the in-memory index before loading), or 0. */
export function indexFileEntryCount(path: string): number {
  try {
    const fd = openSync(path, 'r');
    try {
      const header = Buffer.alloc(INDEX_HEADER_BYTES);
      readFully(fd, header);
      return header.readUInt32LE(0) === INDEX_MAGIC ? header.readUInt32LE(12) : 0;
    } finally {
      closeSync(fd);
    }
  } catch {
    return 0;
  }
}

/** The bytes of an index file, or undefined when it cannot be read. */
export function readIndexFile(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/** Writes `file` to `path` through `temporaryPath`: written, fsync'ed, then renamed into place. */
export async function writeIndexFile(path: string, temporaryPath: string, file: Buffer): Promise<void> {
  const handle = await open(temporaryPath, 'w');
  try {
    await handle.writeFile(file);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporaryPath, path);
}

function readFully(fd: number, buffer: Buffer): void {
  for (let done = 0; done < buffer.length; ) {
    const bytesRead = readSync(fd, buffer, done, buffer.length - done, done);
    if (bytesRead === 0) throw new Error('short index file');
    done += bytesRead;
  }
}
