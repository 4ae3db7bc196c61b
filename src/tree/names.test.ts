import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Code, StatusError } from '../util/status.js';
import { childPath, compareNames, isSafeName, splitTreePath } from './names.js';

describe('tree names', () => {
  test('unsafe entry names are recognised', () => {
    for (const name of ['', '.', '..', 'a/b', 'nul\0']) assert.equal(isSafeName(name), false, name);
    assert.equal(isSafeName('.hidden'), true);
    // Linux takes names of up to 255 bytes: 127 two-byte characters pass, 128 do not.
    assert.equal(isSafeName('n'.repeat(255)), true);
    assert.equal(isSafeName('n'.repeat(256)), false);
    assert.equal(isSafeName('é'.repeat(127)), true);
    assert.equal(isSafeName('é'.repeat(128)), false);
  });

  test('names sort by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FF5E (3 UTF-8 bytes, one UTF-16 unit) sorts before U+1F600 (4 bytes, a surrogate pair, which sorts lower in UTF-16).
    const names = ['\u{1F600}', '\uFF5E', 'b', 'a'];
    assert.deepEqual([...names].sort(compareNames), ['a', 'b', '\uFF5E', '\u{1F600}']);
  });

  test('tree paths split into components, ignoring "." and extra slashes, never leaving the root', () => {
    assert.deepEqual(splitTreePath('/a/./b//c/'), ['a', 'b', 'c']);
    assert.deepEqual(splitTreePath(''), []);
    assert.throws(
      () => splitTreePath('a/../b'),
      (error: unknown) => error instanceof StatusError && error.code === Code.INVALID_ARGUMENT,
    );
    assert.equal(childPath('', 'a'), 'a');
    assert.equal(childPath('a/b', 'c'), 'a/b/c');
  });
});
