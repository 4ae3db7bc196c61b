/**
 * The in-memory index of SegmentBlobStore: key -> (segment, offset, length), in
 * flat typed arrays (open addressing, linear probing) instead of a Map of
 * strings and objects. An entry costs 56 bytes per slot whatever the heap looks
 * like, and the garbage collector never walks it (a Map of millions of entries
 * is marked by every full collection).
 *
 * A key is the 32 bytes of a SHA-256 hash, or for other digest functions and
 * opaque keys the SHA-256 of the key string, plus the digest's size. Segments
 * are evicted whole and in order, so an entry is dead as soon as its segment
 * number is below `oldestSegment`: dropping a segment is one assignment, and
 * dead slots are reused by inserts and purged when the table is rebuilt.
 */
import { createHash, randomInt } from 'node:crypto';
import type { Digest } from '../digest/digest.js';

/** Where a record's data is, and the CRC-32 of its record (to recognise a rewrite of the same content). */
export interface SegmentLocation {
  segment: number;
  /** Offset of the data (after the record's header) in the segment file. */
  offset: number;
  length: number;
  crc: number;
}

const KEY_WORDS = 8;
const INITIAL_CAPACITY = 1024;
/** Occupied slots (live or dead) above this share of the table trigger a rebuild. */
const MAXIMUM_LOAD = 0.7;
/** The size of a deleted entry's slot (see delete). */
const DELETED_SIZE = -1;

/** The 8 words identifying a digest (see the module comment); written into `into`. */
export function keyWordsOf(digest: Digest, into: Uint32Array, scratch: Buffer): void {
  let bytes = scratch;
  if (digest.hash.length !== 64 || scratch.write(digest.hash, 'hex') !== 32) {
    bytes = createHash('sha256').update(`${digest.hash}-${digest.sizeBytes}`).digest();
  }
  for (let i = 0; i < KEY_WORDS; i++) into[i] = bytes.readUInt32LE(i * 4);
}

export class SegmentIndex {
  private capacity = 0;
  private mask = 0;
  private keys = new Uint32Array(0);
  private sizes = new Float64Array(0);
  /** 0 marks an empty slot; segment numbers start at 1. */
  private segments = new Uint32Array(0);
  private offsets = new Uint32Array(0);
  private lengths = new Uint32Array(0);
  private crcs = new Uint32Array(0);
  private occupied = 0;
  private live = 0;
  private oldest = 1;
  /** Live entries per segment, so dropping a segment keeps `count` exact. */
  private readonly perSegment = new Map<number, number>();
  /** Which two key words and which seed place a key: chosen per process, so crafted hashes cannot pile up. */
  private readonly firstWord = randomInt(KEY_WORDS);
  private readonly secondWord = (this.firstWord + 1 + randomInt(KEY_WORDS - 1)) % KEY_WORDS;
  private readonly seed = randomInt(2 ** 32);

  constructor() {
    this.allocate(INITIAL_CAPACITY);
  }

  /** Live entries. */
  get count(): number {
    return this.live;
  }

  /** Bytes held by the table's arrays (its whole memory, apart from a few fixed objects). */
  get memoryBytes(): number {
    return this.capacity * (KEY_WORDS * 4 + 8 + 4 * 4);
  }

  /** Entries of segments below this number are dead. */
  get oldestSegment(): number {
    return this.oldest;
  }

  /** The live entry of a key, or undefined. */
  get(key: Uint32Array, sizeBytes: number): SegmentLocation | undefined {
    const slot = this.find(key, sizeBytes);
    if (slot < 0) return undefined;
    return {
      segment: this.segments[slot] as number,
      offset: this.offsets[slot] as number,
      length: this.lengths[slot] as number,
      crc: this.crcs[slot] as number,
    };
  }

  has(key: Uint32Array, sizeBytes: number): boolean {
    return this.find(key, sizeBytes) >= 0;
  }

  /** Adds a key or moves it to a new location. */
  set(key: Uint32Array, sizeBytes: number, location: SegmentLocation): void {
    if (location.segment < this.oldest) return;
    let slot = this.slotOf(key);
    let reusable = -1;
    for (;;) {
      const segment = this.segments[slot] as number;
      if (segment === 0) break;
      if (segment < this.oldest) {
        if (reusable < 0) reusable = slot;
      } else if (this.matches(slot, key, sizeBytes)) {
        this.countIn(segment, -1);
        this.write(slot, key, sizeBytes, location);
        return;
      }
      slot = (slot + 1) & this.mask;
    }
    if (reusable >= 0) slot = reusable;
    else this.occupied++;
    this.write(slot, key, sizeBytes, location);
    this.live++;
    if (this.occupied > this.capacity * MAXIMUM_LOAD) this.rebuild();
  }

  /**
   * Removes a key's entry (a record found corrupt on read). Its slot keeps its
   * segment, so probe chains stay whole, and a size no digest has, so it never
   * matches again; it is reused once its segment is dropped.
   */
  delete(key: Uint32Array, sizeBytes: number): void {
    const slot = this.find(key, sizeBytes);
    if (slot < 0) return;
    this.countIn(this.segments[slot] as number, -1);
    this.sizes[slot] = DELETED_SIZE;
    this.live--;
  }

  /** Makes room for `entries` live entries at once (before loading a store's index files), so the table is not rebuilt as it fills. */
  reserve(entries: number): void {
    if (this.occupied > 0) return;
    let capacity = this.capacity;
    while (entries > capacity * MAXIMUM_LOAD * 0.9) capacity *= 2;
    if (capacity !== this.capacity) this.allocate(capacity);
  }

  /** Kills every entry of segments below `segment`. */
  dropSegmentsBefore(segment: number): void {
    for (let dropped = this.oldest; dropped < segment; dropped++) {
      this.live -= this.perSegment.get(dropped) ?? 0;
      this.perSegment.delete(dropped);
    }
    if (segment > this.oldest) this.oldest = segment;
  }

  private find(key: Uint32Array, sizeBytes: number): number {
    let slot = this.slotOf(key);
    for (;;) {
      const segment = this.segments[slot] as number;
      if (segment === 0) return -1;
      if (segment >= this.oldest && this.matches(slot, key, sizeBytes)) return slot;
      slot = (slot + 1) & this.mask;
    }
  }

  private slotOf(key: Uint32Array): number {
    const a = key[this.firstWord] as number;
    const b = key[this.secondWord] as number;
    return (a ^ ((b << 16) | (b >>> 16)) ^ this.seed) & this.mask;
  }

  private matches(slot: number, key: Uint32Array, sizeBytes: number): boolean {
    if (this.sizes[slot] !== sizeBytes) return false;
    const base = slot * KEY_WORDS;
    for (let i = 0; i < KEY_WORDS; i++) if (this.keys[base + i] !== key[i]) return false;
    return true;
  }

  private write(slot: number, key: Uint32Array, sizeBytes: number, location: SegmentLocation): void {
    this.keys.set(key, slot * KEY_WORDS);
    this.sizes[slot] = sizeBytes;
    this.segments[slot] = location.segment;
    this.offsets[slot] = location.offset;
    this.lengths[slot] = location.length;
    this.crcs[slot] = location.crc;
    this.countIn(location.segment, 1);
  }

  private countIn(segment: number, change: number): void {
    this.perSegment.set(segment, (this.perSegment.get(segment) ?? 0) + change);
  }

  private allocate(capacity: number): void {
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.keys = new Uint32Array(capacity * KEY_WORDS);
    this.sizes = new Float64Array(capacity);
    this.segments = new Uint32Array(capacity);
    this.offsets = new Uint32Array(capacity);
    this.lengths = new Uint32Array(capacity);
    this.crcs = new Uint32Array(capacity);
    this.occupied = 0;
    this.live = 0;
  }

  /** Re-inserts the live entries into a table sized for them (twice as large when they fill half or more). */
  private rebuild(): void {
    const { capacity, keys, sizes, segments, offsets, lengths, crcs } = this;
    let liveSlots = 0;
    const isLive = (slot: number) => (segments[slot] as number) >= this.oldest && (sizes[slot] as number) >= 0;
    for (let slot = 0; slot < capacity; slot++) if (isLive(slot)) liveSlots++;
    this.allocate(liveSlots * 2 >= capacity * MAXIMUM_LOAD ? capacity * 2 : capacity);
    this.perSegment.clear();
    const key = new Uint32Array(KEY_WORDS);
    for (let slot = 0; slot < capacity; slot++) {
      const segment = segments[slot] as number;
      if (!isLive(slot)) continue;
      key.set(keys.subarray(slot * KEY_WORDS, (slot + 1) * KEY_WORDS));
      this.set(key, sizes[slot] as number, {
        segment,
        offset: offsets[slot] as number,
        length: lengths[slot] as number,
        crc: crcs[slot] as number,
      });
    }
  }
}
