/**
 * The record format of SegmentBlobStore's segment files: each blob is one
 * record, appended, with a header that makes the file self-describing, so the
 * index can be rebuilt by reading the segments from the start:
 *
 *   0  u32  magic 'GRS1'
 *   4  u32  CRC-32 of everything after this field (the rest of the header, the key, the data)
 *   8  u32  data length
 *   12 u16  key length
 *   14 u16  zero
 *   16      key: "hash-size" (ASCII)
 *   ..      data
 *
 * Integers are little-endian. A record whose magic, lengths or CRC do not check
 * out ends the segment: it is the torn tail of an append cut short by a crash.
 */
import { crc32 } from 'node:zlib';
import type { Digest } from '../digest/digest.js';

export const RECORD_MAGIC = 0x31535247; // 'GRS1' read as a little-endian u32
export const RECORD_HEADER_BYTES = 16;
/** The longest key a header can name (u16). */
const MAXIMUM_KEY_BYTES = 0xffff;

/** The header and key of a record for `data`, and the record's CRC. */
export function encodeRecordHeader(key: string, data: readonly Buffer[]): { header: Buffer; crc: number } {
  const keyBytes = Buffer.byteLength(key, 'latin1');
  if (keyBytes > MAXIMUM_KEY_BYTES) throw new Error(`key of ${keyBytes} bytes is too long for a segment record`);
  let dataLength = 0;
  for (const chunk of data) dataLength += chunk.length;
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES + keyBytes);
  header.writeUInt32LE(RECORD_MAGIC, 0);
  header.writeUInt32LE(dataLength, 8);
  header.writeUInt16LE(keyBytes, 12);
  header.writeUInt16LE(0, 14);
  header.write(key, RECORD_HEADER_BYTES, 'latin1');
  let crc = crc32(header.subarray(8));
  for (const chunk of data) crc = crc32(chunk, crc);
  header.writeUInt32LE(crc, 4);
  return { header, crc };
}

/** What a record's fixed header says, or undefined when it is not a record header. */
export function decodeRecordHeader(
  header: Buffer,
): { crc: number; dataLength: number; keyLength: number; recordLength: number } | undefined {
  if (header.length < RECORD_HEADER_BYTES || header.readUInt32LE(0) !== RECORD_MAGIC) return undefined;
  if (header.readUInt16LE(14) !== 0) return undefined;
  const dataLength = header.readUInt32LE(8);
  const keyLength = header.readUInt16LE(12);
  return {
    crc: header.readUInt32LE(4),
    dataLength,
    keyLength,
    recordLength: RECORD_HEADER_BYTES + keyLength + dataLength,
  };
}

/** Whether a whole record (header, key and data, contiguous in `record`) matches its CRC. */
export function recordChecksumMatches(record: Buffer, crc: number): boolean {
  return crc32(record.subarray(8)) === crc;
}

/** The digest a record's key names, or undefined when the key is not "hash-size". */
export function digestOfRecordKey(key: string): Digest | undefined {
  const dash = key.lastIndexOf('-');
  if (dash <= 0) return undefined;
  const sizeBytes = Number(key.slice(dash + 1));
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) return undefined;
  return { hash: key.slice(0, dash), sizeBytes };
}
