import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatSize, parseSize } from './size.js';

describe('parseSize', () => {
  it('reads bytes, binary and decimal units, and fractions', () => {
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('64KiB'), 64 * 1024);
    assert.equal(parseSize('1.5 GiB'), 1.5 * 1024 ** 3);
    assert.equal(parseSize('2MB'), 2_000_000);
    assert.equal(formatSize(parseSize('10GiB')), '10GiB');
  });

  it('refuses zero unless it is allowed, and garbage always', () => {
    assert.throws(() => parseSize('0'), /size "0" is out of range/);
    assert.equal(parseSize('0', { allowZero: true }), 0);
    assert.throws(() => parseSize('lots', { allowZero: true }), /invalid size "lots"/);
    assert.throws(() => parseSize('-1', { allowZero: true }), /invalid size/);
  });
});
