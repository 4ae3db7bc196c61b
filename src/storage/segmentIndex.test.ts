import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testBlob } from '../../test/support/blobStoreContract.js';
import { digestOf, SHA512 } from '../digest/digest.js';
import { keyWordsOf, SegmentIndex } from './segmentIndex.js';

function keyOf(seed: number, sizeBytes = 100): Uint32Array {
  const key = new Uint32Array(8);
  keyWordsOf({ ...testBlob(8, seed).digest, sizeBytes }, key, Buffer.alloc(32));
  return key;
}

function location(segment: number, offset: number) {
  return { segment, offset, length: 100, crc: offset };
}

describe('SegmentIndex', () => {
  it('finds every key it was given as the table grows, and no other', () => {
    const index = new SegmentIndex();
    for (let seed = 0; seed < 20_000; seed++) index.set(keyOf(seed), 100, location(1 + (seed >> 10), seed));
    assert.equal(index.count, 20_000);
    for (let seed = 0; seed < 20_000; seed++) assert.equal(index.get(keyOf(seed), 100)?.offset, seed);
    for (let seed = 20_000; seed < 21_000; seed++) assert.equal(index.get(keyOf(seed), 100), undefined);
    assert.equal(index.get(keyOf(5), 101), undefined, 'the size is part of the key');
    assert.ok(index.memoryBytes < 20_000 * 56 * 3, `${index.memoryBytes} bytes for 20,000 entries`);
  });

  it('moves a key set again to its new location without counting it twice', () => {
    const index = new SegmentIndex();
    index.set(keyOf(1), 100, location(1, 10));
    index.set(keyOf(1), 100, location(2, 20));
    assert.equal(index.count, 1);
    assert.deepEqual(index.get(keyOf(1), 100), location(2, 20));
    index.dropSegmentsBefore(2);
    assert.equal(index.count, 1, 'the key no longer counts in the segment it left');
  });

  it('forgets the entries of dropped segments and reuses their slots', () => {
    const index = new SegmentIndex();
    for (let seed = 0; seed < 3000; seed++) index.set(keyOf(seed), 100, location(1 + Math.floor(seed / 1000), seed));
    index.dropSegmentsBefore(3);
    assert.equal(index.count, 1000);
    assert.equal(index.get(keyOf(10), 100), undefined);
    assert.equal(index.get(keyOf(2500), 100)?.offset, 2500);
    index.set(keyOf(10), 100, location(1, 5));
    assert.equal(index.get(keyOf(10), 100), undefined, 'an entry in a dropped segment is not added');
    const before = index.memoryBytes;
    for (let round = 0; round < 20; round++) {
      for (let seed = 0; seed < 1000; seed++)
        index.set(keyOf(10_000 + round * 1000 + seed), 100, location(4 + round, seed));
      index.dropSegmentsBefore(4 + round);
    }
    assert.equal(index.count, 1000);
    assert.ok(index.memoryBytes <= before, 'a steady number of live entries does not grow the table');
  });

  it('keys other digest functions by a hash of the digest', () => {
    const index = new SegmentIndex();
    const digest = digestOf('data', SHA512);
    const key = new Uint32Array(8);
    keyWordsOf(digest, key, Buffer.alloc(32));
    index.set(key, digest.sizeBytes, location(1, 1));
    const other = new Uint32Array(8);
    keyWordsOf({ hash: `${digest.hash.slice(0, -1)}0`, sizeBytes: digest.sizeBytes }, other, Buffer.alloc(32));
    assert.ok(index.has(key, digest.sizeBytes));
    assert.ok(!index.has(other, digest.sizeBytes));
  });

  it('deletes an entry without breaking the probe chains of others, and takes the key again later', () => {
    const index = new SegmentIndex();
    for (let seed = 0; seed < 5000; seed++) index.set(keyOf(seed), 100, location(1, seed));
    for (let seed = 0; seed < 5000; seed += 2) index.delete(keyOf(seed), 100);
    assert.equal(index.count, 2500);
    for (let seed = 0; seed < 5000; seed++) {
      assert.equal(index.get(keyOf(seed), 100)?.offset, seed % 2 === 0 ? undefined : seed);
    }
    // More entries force a rebuild: deleted ones stay deleted.
    for (let seed = 5000; seed < 20_000; seed++) index.set(keyOf(seed), 100, location(2, seed));
    assert.equal(index.count, 2500 + 15_000);
    assert.equal(index.get(keyOf(4), 100), undefined);
    index.set(keyOf(4), 100, location(3, 44));
    assert.equal(index.get(keyOf(4), 100)?.offset, 44);
    index.dropSegmentsBefore(2);
    assert.equal(index.count, 15_001);
  });

  it('reserves room for the entries it will load, so filling it does not grow the table', () => {
    const index = new SegmentIndex();
    index.reserve(100_000);
    const reserved = index.memoryBytes;
    for (let seed = 0; seed < 100_000; seed++) index.set(keyOf(seed), 100, location(1, seed));
    assert.equal(index.memoryBytes, reserved);
    assert.equal(index.get(keyOf(99_999), 100)?.offset, 99_999);
  });
});
