import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code, StatusError } from '../util/status.js';
import { parseDigest, SHA1, SHA256 } from './digest.js';

const valid = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function rejects(hash: string, sizeBytes = 1): void {
  assert.throws(
    () => parseDigest({ hash, sizeBytes }, SHA256),
    (error: unknown) => error instanceof StatusError && error.code === Code.INVALID_ARGUMENT,
    JSON.stringify(hash),
  );
}

describe('parseDigest', () => {
  it('accepts lowercase hex of the function length and a safe non-negative size', () => {
    assert.deepEqual(parseDigest({ hash: valid, sizeBytes: 0 }, SHA256), { hash: valid, sizeBytes: 0 });
    assert.equal(parseDigest({ hash: valid.slice(0, 40), sizeBytes: 3 }, undefined).hash.length, SHA1.hexLength);
  });

  it('rejects uppercase, non-hex, non-ASCII and wrongly sized hashes with INVALID_ARGUMENT', () => {
    rejects(valid.toUpperCase());
    rejects(`${valid.slice(0, 63)}g`);
    rejects(`${valid.slice(0, 63)}/`);
    rejects(`${valid.slice(0, 63)}:`);
    rejects(`${valid.slice(0, 63)}\u0661`); // an Arabic-Indic digit one
    rejects(`${valid.slice(0, 63)}\u0100`); // its low byte is 0x00
    rejects(valid.slice(0, 63));
    rejects('');
  });

  it('rejects negative, fractional and unsafe sizes', () => {
    for (const size of [-1, 1.5, 2 ** 53]) rejects(valid, size);
  });
});
