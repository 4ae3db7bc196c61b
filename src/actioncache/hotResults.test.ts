import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HotResults } from './hotResults.js';

describe('HotResults', () => {
  it('keeps at most maximumBytes, dropping the least recently used first', () => {
    const hot = new HotResults<string>({ ttlMs: 1000, maximumBytes: 10, now: () => 0 });
    hot.remember('a', 'A', 4, hot.generation, 0);
    hot.remember('b', 'B', 4, hot.generation, 0);
    assert.equal(hot.get('a'), 'A');
    hot.remember('c', 'C', 4, hot.generation, 0);
    assert.equal(hot.get('b'), undefined, 'b was the least recently used');
    assert.equal(hot.get('a'), 'A');
    assert.equal(hot.get('c'), 'C');
    hot.remember('huge', 'H', 11, hot.generation, 0);
    assert.equal(hot.get('huge'), undefined, 'a value larger than the bound is not kept');
  });

  it('does not remember a verdict from a lookup that started before an invalidation', () => {
    const hot = new HotResults<string>({ ttlMs: 1000, maximumBytes: 100, now: () => 0 });
    const before = hot.generation;
    hot.forget('other');
    hot.remember('a', 'A', 1, before, 0);
    assert.equal(hot.get('a'), undefined);
    const beforeAll = hot.generation;
    hot.forgetAll();
    hot.remember('a', 'A', 1, beforeAll, 0);
    assert.equal(hot.size, 0);
  });

  it('remembers nothing with a TTL of 0', () => {
    const hot = new HotResults<string>({ ttlMs: 0, maximumBytes: 100, now: () => 0 });
    hot.remember('a', 'A', 1, hot.generation, 0);
    assert.equal(hot.get('a'), undefined);
  });
});
