/**
 * Property-based tests of digest validation: any hash and size from the wire are
 * accepted as a well-formed digest or refused with INVALID_ARGUMENT, and every
 * well-formed digest of each supported function is accepted unchanged.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { acceptsOrRefuses, fuzzParameters, hexString, isStatus } from '../../test/support/fuzz.js';
import { Code } from '../util/status.js';
import { digestFunctionByName, parseDigest, resolveDigestFunction, SUPPORTED_DIGEST_FUNCTIONS } from './digest.js';

const invalidArgument = isStatus(Code.INVALID_ARGUMENT);
const functionOrNone = fc.option(fc.constantFrom(...SUPPORTED_DIGEST_FUNCTIONS), { nil: undefined });
const hashLike = fc.oneof(
  fc.string(),
  fc.constantFrom(32, 40, 64, 96, 128).chain((length) => hexString(length)),
  fc
    .constantFrom(32, 64)
    .chain((length) =>
      fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEFg'), minLength: length, maxLength: length }),
    ),
);
const sizeLike = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, -0, Number.NaN, Number.POSITIVE_INFINITY),
);

describe('digests (property-based)', () => {
  it('accepts a digest only when its hash is lowercase hex of the right length and its size a safe integer', () => {
    fc.assert(
      fc.property(hashLike, sizeLike, functionOrNone, (hash, sizeBytes, fn) => {
        const parsed = acceptsOrRefuses(() => parseDigest({ hash, sizeBytes }, fn), invalidArgument);
        const lengthFits = fn
          ? hash.length === fn.hexLength
          : SUPPORTED_DIGEST_FUNCTIONS.some((f) => f.hexLength === hash.length);
        const valid = lengthFits && /^[0-9a-f]+$/.test(hash) && Number.isSafeInteger(sizeBytes) && sizeBytes >= 0;
        assert.equal(parsed !== undefined, valid, `hash "${hash}" size ${sizeBytes}`);
        if (parsed) assert.deepEqual(parsed, { hash, sizeBytes });
      }),
      fuzzParameters,
    );
  });

  it('accepts every well-formed digest of every supported function', () => {
    fc.assert(
      fc.property(
        fc
          .constantFrom(...SUPPORTED_DIGEST_FUNCTIONS)
          .chain((fn) => fc.tuple(fc.constant(fn), hexString(fn.hexLength))),
        fc.maxSafeNat(),
        ([fn, hash], sizeBytes) => {
          assert.deepEqual(parseDigest({ hash, sizeBytes }, fn), { hash, sizeBytes });
          assert.deepEqual(parseDigest({ hash, sizeBytes }, undefined), { hash, sizeBytes });
          assert.equal(resolveDigestFunction(fn.value), fn);
          assert.equal(resolveDigestFunction(0, hash), fn);
          assert.equal(digestFunctionByName(fn.name.toUpperCase()), fn);
        },
      ),
      fuzzParameters,
    );
  });

  it('resolves any function number to a supported function or refuses it with INVALID_ARGUMENT', () => {
    fc.assert(
      fc.property(fc.integer(), fc.option(fc.string(), { nil: undefined }), (value, sample) => {
        const fn = acceptsOrRefuses(() => resolveDigestFunction(value, sample), invalidArgument);
        if (fn) assert.ok(SUPPORTED_DIGEST_FUNCTIONS.includes(fn));
        else assert.notEqual(value, 0);
      }),
      fuzzParameters,
    );
  });
});
