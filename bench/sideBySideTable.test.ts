import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FigureRounds, formatTable, type ServerColumn, summarise } from './sideBySideTable.js';

const columns: ServerColumn[] = [
  { label: 'granary', role: 'granary' },
  { label: 'bazel-remote', role: 'other' },
  { label: 'buildbarn', role: 'other' },
  { label: 'null sink', role: 'sink' },
];

function figure(lowerIsBetter: boolean, rounds: Record<string, number[]>): FigureRounds {
  return { title: 't', unit: lowerIsBetter ? 'ms' : 'blobs/s', lowerIsBetter, rounds: new Map(Object.entries(rounds)) };
}

describe('side-by-side summary', () => {
  it('compares Granary best round of a rate with the best other server, never with the null sink', () => {
    const row = summarise(
      figure(false, { granary: [50, 100], 'bazel-remote': [150, 200], buildbarn: [400, 380], 'null sink': [9000] }),
      columns,
    );
    assert.equal(row.best.get('granary'), 100);
    assert.deepEqual(row.ratio, { value: 0.25, against: 'buildbarn' });
  });

  it('orients latency ratios so that a value of 1 or more means Granary is as fast or faster', () => {
    const row = summarise(figure(true, { granary: [30, 20], buildbarn: [40, 60] }), columns);
    assert.equal(row.best.get('granary'), 20);
    assert.deepEqual(row.ratio, { value: 2, against: 'buildbarn' });
  });

  it('reports the widest gap between a server best and worst round as the spread', () => {
    const row = summarise(figure(false, { granary: [80, 100], buildbarn: [95, 100] }), columns);
    assert.equal(row.spread, 0.2);
  });

  it('gives no ratio when no other server was measured', () => {
    const row = summarise(figure(false, { granary: [100], 'null sink': [500] }), columns);
    assert.equal(row.ratio, undefined);
  });

  it('prints a dash for a server without a value and names the server Granary was compared with', () => {
    const lines = formatTable([summarise(figure(false, { granary: [100], buildbarn: [200] }), columns)], columns);
    assert.match(lines[0] as string, /null sink \(client ceiling\)/);
    assert.match(lines[2] as string, /\| +- \|/);
    assert.match(lines[2] as string, /0\.50x \(buildbarn\)/);
  });
});
