import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forEachLimit, mapLimited, Semaphore } from './concurrency.js';

/** A function that records how many of its calls overlap, resolving each on the next tick. */
function overlapCounter() {
  let active = 0;
  let peak = 0;
  return {
    get peak() {
      return peak;
    },
    async call<T>(value: T): Promise<T> {
      active++;
      peak = Math.max(peak, active);
      await new Promise((resolve) => setImmediate(resolve));
      active--;
      return value;
    },
  };
}

describe('mapLimited', () => {
  it('returns the results in the order of the items, whatever order the calls finish in', async () => {
    const results = await mapLimited([30, 10, 20, 0], 4, async (delay, index) => {
      await new Promise((resolve) => setTimeout(resolve, delay));
      return `${index}:${delay}`;
    });
    assert.deepEqual(results, ['0:30', '1:10', '2:20', '3:0']);
  });

  it('never has more than the limit in flight, and uses the whole limit', async () => {
    const counter = overlapCounter();
    const items = Array.from({ length: 50 }, (_, i) => i);
    const results = await mapLimited(items, 3, (item) => counter.call(item * 2));
    assert.equal(counter.peak, 3);
    assert.deepEqual(
      results,
      items.map((i) => i * 2),
    );
  });

  it('takes any iterable, such as the entries of a map', async () => {
    const map = new Map([
      ['a', 1],
      ['b', 2],
    ]);
    assert.deepEqual(await mapLimited(map, 2, async ([key, value]) => `${key}${value}`), ['a1', 'b2']);
  });

  it('treats a limit below one as one, and an empty list as nothing to do', async () => {
    const counter = overlapCounter();
    assert.deepEqual(await mapLimited([1, 2, 3], 0, (item) => counter.call(item)), [1, 2, 3]);
    assert.equal(counter.peak, 1);
    assert.deepEqual(await mapLimited([], 4, async () => 1), []);
  });

  it('starts nothing after a failure, waits for the calls in flight, then throws the first error', async () => {
    const started: number[] = [];
    let finishedInFlight = false;
    const failure = mapLimited([0, 1, 2, 3, 4, 5], 2, async (item) => {
      started.push(item);
      if (item === 0) throw new Error('first');
      if (item === 1) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        finishedInFlight = true;
        throw new Error('second');
      }
      return item;
    });
    await assert.rejects(failure, /first/);
    assert.equal(finishedInFlight, true);
    assert.deepEqual(started, [0, 1]);
  });
});

describe('forEachLimit', () => {
  it('runs the function once per item with bounded concurrency', async () => {
    const counter = overlapCounter();
    const seen: number[] = [];
    await forEachLimit(new Set([1, 2, 3, 4, 5]), 2, async (item) => {
      await counter.call(item);
      seen.push(item);
    });
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      [1, 2, 3, 4, 5],
    );
    assert.equal(counter.peak, 2);
  });

  it('throws the first failure', async () => {
    await assert.rejects(
      forEachLimit([1, 2], 4, async (item) => {
        if (item === 2) throw new Error('two failed');
      }),
      /two failed/,
    );
  });
});

describe('Semaphore', () => {
  it('lets at most its limit of operations run at once, across independent callers', async () => {
    const semaphore = new Semaphore(2);
    const counter = overlapCounter();
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => semaphore.run(() => counter.call(i))));
    assert.deepEqual(results, [1, 2, 3, 4, 5]);
    assert.equal(counter.peak, 2);
  });

  it('releases its slot when an operation fails', async () => {
    const semaphore = new Semaphore(1);
    await assert.rejects(
      semaphore.run(async () => {
        throw new Error('broken');
      }),
      /broken/,
    );
    assert.equal(await semaphore.run(async () => 'next'), 'next');
  });
});
