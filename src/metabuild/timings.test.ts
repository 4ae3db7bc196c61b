import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BuildTimings } from './timings.js';

describe('BuildTimings', () => {
  it('adds up the time each element spends in each step, and the totals', () => {
    let now = 0;
    const timings = new BuildTimings(() => now);
    timings.handle({ element: 'a.bst', state: 'running', step: 'sources' });
    now = 1000;
    timings.handle({ element: 'a.bst', state: 'running', step: 'building' });
    timings.handle({ element: 'b.bst', state: 'running', step: 'sources' });
    now = 3500;
    timings.handle({ element: 'a.bst', state: 'built' });
    timings.handle({ element: 'b.bst', state: 'failed' });
    assert.deepEqual(
      timings.report().map((line) => line.split(/\s+/)),
      [
        ['element', 'sources', 'building'],
        ['a.bst', '1.0', '2.5'],
        ['b.bst', '2.5', '-'],
        ['(total)', '3.5', '2.5'],
      ],
    );
  });
});
