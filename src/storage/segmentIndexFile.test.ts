import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testBlob } from '../../test/support/blobStoreContract.js';
import { keyWordsOf, type SegmentLocation } from './segmentIndex.js';
import { decodeIndexFile, INDEX_HEADER_BYTES, IndexEntries, type SegmentIdentity } from './segmentIndexFile.js';

const identity: SegmentIdentity = {
  segment: 7,
  lengthBytes: 1_000_000,
  inode: 123_456_789_012n,
  birthTimeNs: 1n << 60n,
};

function entriesOf(count: number) {
  const entries = new IndexEntries();
  const expected: Array<{ key: number[]; sizeBytes: number; location: SegmentLocation }> = [];
  for (let seed = 0; seed < count; seed++) {
    const { digest } = testBlob(50, seed);
    const key = new Uint32Array(8);
    keyWordsOf(digest, key, Buffer.alloc(32));
    const location = { segment: 7, offset: seed * 500 + 100, length: 400 + seed, crc: (seed * 2_654_435_761) >>> 0 };
    entries.add(key, digest.sizeBytes + seed * 1e9, location);
    expected.push({ key: [...key], sizeBytes: digest.sizeBytes + seed * 1e9, location });
  }
  return { entries, expected };
}

function decoded(file: Buffer, against: SegmentIdentity) {
  const seen: Array<{ key: number[]; sizeBytes: number; location: SegmentLocation }> = [];
  const ok = decodeIndexFile(file, against, (key, sizeBytes, location) =>
    seen.push({ key: [...key], sizeBytes, location: { ...location } }),
  );
  return { ok, seen };
}

describe('segment index files', () => {
  it('give back every entry in order, keys, sizes beyond 32 bits and locations included', () => {
    const { entries, expected } = entriesOf(1000);
    const file = entries.encode(identity);
    assert.equal(file.length, INDEX_HEADER_BYTES + 1000 * 52);
    assert.deepEqual(decoded(file, identity), { ok: true, seen: expected });
  });

  it('round-trip a segment with no records', () => {
    assert.deepEqual(decoded(new IndexEntries().encode(identity), identity), { ok: true, seen: [] });
  });

  it('are refused, adding nothing, when they describe another file: number, length, inode or birth time', () => {
    const file = entriesOf(10).entries.encode(identity);
    for (const other of [
      { ...identity, segment: 8 },
      { ...identity, lengthBytes: identity.lengthBytes - 1 },
      { ...identity, lengthBytes: identity.lengthBytes + 4096 },
      { ...identity, inode: identity.inode + 1n },
      { ...identity, birthTimeNs: identity.birthTimeNs - 1n },
    ]) {
      assert.deepEqual(
        decoded(file, other),
        { ok: false, seen: [] },
        JSON.stringify(other, (_k, v) => String(v)),
      );
    }
  });

  it('are refused when truncated, extended or changed anywhere', () => {
    const file = entriesOf(20).entries.encode(identity);
    for (const length of [0, 10, INDEX_HEADER_BYTES, file.length - 52, file.length - 1]) {
      assert.equal(decoded(file.subarray(0, length), identity).ok, false, `cut to ${length} bytes`);
    }
    assert.equal(decoded(Buffer.concat([file, Buffer.alloc(52)]), identity).ok, false, 'a zero entry appended');
    for (let at = 0; at < file.length; at += 7) {
      const changed = Buffer.from(file);
      changed[at] = (changed[at] as number) ^ 0x10;
      assert.deepEqual(decoded(changed, identity), { ok: false, seen: [] }, `byte ${at} changed`);
    }
  });

  it('are refused when an entry points past the end of the segment, even with a good checksum', () => {
    const entries = new IndexEntries();
    entries.add(new Uint32Array(8), 10, { segment: 7, offset: identity.lengthBytes - 5, length: 10, crc: 0 });
    assert.equal(decoded(entries.encode(identity), identity).ok, false);
  });
});
