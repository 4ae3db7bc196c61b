import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageHistory } from './usageHistory.js';

describe('the usage history of the web UI charts', () => {
  it('samples every store and the cache lookups counted so far, and keeps a bounded number of samples', () => {
    let nowMs = 1000;
    let usedBytes = 10;
    const history = new UsageHistory({
      stores: () => [
        { name: 'cas', usage: () => ({ usedBytes, maximumBytes: 100, blobCount: 1 }) },
        { name: 'remote' },
      ],
      maximumSamples: 2,
      now: () => nowMs,
    });
    history.countLookup(true);
    history.record();
    nowMs = 2000;
    usedBytes = 20;
    history.countLookup(false);
    history.countLookup(true);
    history.record();
    nowMs = 3000;
    history.record();
    nowMs = 4000;
    usedBytes = 40;
    const samples = history.history();
    assert.deepEqual(
      samples.map((s) => [s.atMs, s.stores.cas?.usedBytes, s.cacheHits, s.cacheMisses]),
      [
        [2000, 20, 2, 1],
        [3000, 20, 2, 1],
        [4000, 40, 2, 1],
      ],
    );
    assert.deepEqual(Object.keys(samples[0]?.stores ?? {}), ['cas'], 'a store without usage is not charted');
  });
});
