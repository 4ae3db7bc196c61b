import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff } from './backoff.js';

describe('exponential backoff', () => {
  it('doubles from the first delay up to the cap, and starts again after reset()', () => {
    const backoff = new Backoff({ firstMs: 500, maximumMs: 5000, random: () => 0.5 });
    assert.deepEqual(
      Array.from({ length: 7 }, () => backoff.next()),
      [500, 1000, 2000, 4000, 5000, 5000, 5000],
    );
    backoff.reset();
    assert.equal(backoff.next(), 500);
  });

  it('spreads each delay by up to the jitter either way, never past the cap', () => {
    const low = new Backoff({ firstMs: 1000, maximumMs: 10_000, jitter: 0.2, random: () => 0 });
    const high = new Backoff({ firstMs: 1000, maximumMs: 10_000, jitter: 0.2, random: () => 0.999999 });
    assert.deepEqual([low.next(), low.next()], [800, 1600]);
    assert.deepEqual([high.next(), high.next()], [1200, 2400]);
    const capped = new Backoff({ firstMs: 10_000, maximumMs: 10_000, jitter: 0.2, random: () => 0.999999 });
    assert.equal(capped.next(), 10_000);
  });

  it('gives different delays to clients that failed together', () => {
    const delays = new Set(Array.from({ length: 20 }, () => new Backoff({ firstMs: 1000, maximumMs: 30_000 }).next()));
    assert.ok(delays.size > 1, `20 clients, delays ${[...delays].join(', ')}`);
  });
});
