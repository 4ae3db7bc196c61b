import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rejectsWithCode } from '../../test/support/status.js';
import { Code } from '../util/status.js';
import { LruIndex } from './lruIndex.js';

function keys(index: LruIndex): string[] {
  return [...index.snapshot()].map(([key]) => key);
}

/** An index holding the given keys of the given size, added in order. */
function indexWith(maximumSizeBytes: number, entries: Array<[string, number]>, now: () => number = () => 0): LruIndex {
  const index = new LruIndex(maximumSizeBytes, now);
  for (const [key, size] of entries) index.add(key, size);
  return index;
}

async function throwsCode(fn: () => unknown, code: Code): Promise<void> {
  await rejectsWithCode((async () => fn())(), code);
}

describe('LruIndex', () => {
  it('tracks the total size and count as keys are added, replaced and removed', () => {
    const index = indexWith(1000, [
      ['a', 10],
      ['b', 20],
    ]);
    assert.equal(index.sizeBytes, 30);
    assert.equal(index.count, 2);
    index.add('a', 15);
    assert.equal(index.sizeBytes, 35);
    assert.equal(index.sizeOf('a'), 15);
    assert.equal(index.remove('b'), true);
    assert.equal(index.remove('b'), false);
    assert.equal(index.sizeBytes, 15);
    assert.equal(index.count, 1);
    assert.equal(index.has('b'), false);
  });

  it('orders keys from least to most recently used, with touch and add moving a key to the end', () => {
    const index = indexWith(1000, [
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ]);
    assert.equal(index.touch('a'), true);
    assert.deepEqual(keys(index), ['b', 'c', 'a']);
    index.add('b', 1);
    assert.deepEqual(keys(index), ['c', 'a', 'b']);
    assert.equal(index.touch('missing'), false);
  });

  it('evicts nothing while the incoming bytes fit, including exactly up to the limit', () => {
    const index = indexWith(100, [
      ['a', 40],
      ['b', 40],
    ]);
    assert.deepEqual(index.makeRoom(20), []);
    assert.equal(index.count, 2);
  });

  it('evicts the least recently used keys first, and only as many as needed', () => {
    const index = indexWith(100, [
      ['a', 30],
      ['b', 30],
      ['c', 30],
    ]);
    index.touch('a'); // order: b, c, a
    assert.deepEqual(index.makeRoom(40), ['b'], '30 bytes are needed');
    index.add('d', 40); // order: c, a, d
    assert.deepEqual(index.makeRoom(60), ['c', 'a'], '60 bytes are needed');
    assert.deepEqual(keys(index), ['d']);
    assert.equal(index.sizeBytes, 40);
  });

  it('evicts several keys in one call when one does not free enough, skipping the touched one', () => {
    const index = indexWith(100, [
      ['a', 30],
      ['b', 30],
      ['c', 30],
    ]);
    index.touch('a'); // order: b, c, a
    assert.deepEqual(index.makeRoom(50), ['b', 'c']);
    assert.deepEqual(keys(index), ['a']);
    assert.equal(index.sizeBytes, 30);
  });

  it('skips keys retained until a later time and evicts them once that time has passed', () => {
    let now = 1_000;
    const index = indexWith(
      100,
      [
        ['a', 50],
        ['b', 50],
      ],
      () => now,
    );
    index.touch('a', 2_000);
    index.touch('b'); // order: a, b; a is retained
    assert.deepEqual(index.makeRoom(50), ['b']);
    index.add('c', 50);
    now = 2_000; // retention ends at its time
    assert.deepEqual(index.makeRoom(50), ['a']);
  });

  it('never shortens a retention when touched or re-added with an earlier time', () => {
    let now = 1_000;
    const index = indexWith(
      100,
      [
        ['a', 50],
        ['b', 50],
      ],
      () => now,
    );
    index.touch('a', 5_000);
    index.touch('a', 2_000);
    index.add('a', 50);
    now = 3_000;
    assert.deepEqual(index.makeRoom(50), ['b']);
  });

  it('throws RESOURCE_EXHAUSTED and evicts nothing when only retained keys could make room', async () => {
    const index = indexWith(
      100,
      [
        ['a', 40],
        ['b', 40],
        ['c', 20],
      ],
      () => 1_000,
    );
    index.touch('a', 2_000);
    index.touch('b', 2_000); // order: c, a, b
    await throwsCode(() => index.makeRoom(50), Code.RESOURCE_EXHAUSTED);
    assert.deepEqual(keys(index), ['c', 'a', 'b'], 'a failed makeRoom removes nothing');
    assert.equal(index.sizeBytes, 100);
    assert.deepEqual(index.makeRoom(20), ['c']);
  });

  it('throws RESOURCE_EXHAUSTED for more bytes than the limit, even when empty', async () => {
    const index = new LruIndex(100);
    await throwsCode(() => index.makeRoom(101), Code.RESOURCE_EXHAUSTED);
    assert.deepEqual(index.makeRoom(100), []);
  });

  it('never evicts the protected key', () => {
    const index = indexWith(100, [
      ['b', 30],
      ['a', 30],
      ['c', 30],
    ]);
    // 90 - 30 (b, replaced) + 70 = 130: 30 bytes must go, and b is the oldest but protected.
    assert.deepEqual(index.makeRoom(70, 'b'), ['a']);
    assert.deepEqual(keys(index), ['b', 'c']);
    const absent = indexWith(100, [
      ['a', 50],
      ['b', 50],
    ]);
    assert.deepEqual(absent.makeRoom(50, 'new'), ['a']);
  });

  it('counts an existing copy of the protected key as space its replacement will reuse', () => {
    const index = indexWith(100, [['a', 60]]);
    assert.deepEqual(index.makeRoom(60, 'a'), []);
    const full = indexWith(100, [
      ['a', 30],
      ['b', 30],
      ['c', 40],
    ]);
    assert.deepEqual(full.makeRoom(40, 'c'), [], 'replacing c with the same size needs no room');
    assert.deepEqual(full.makeRoom(70, 'c'), ['a']);
    full.add('c', 70);
    assert.equal(full.sizeBytes, 100);
  });

  it('treats retention as over for entries whose time equals the injected clock', () => {
    const index = indexWith(10, [['a', 10]], () => 500);
    index.touch('a', 500);
    assert.deepEqual(index.makeRoom(10), ['a']);
  });
});
