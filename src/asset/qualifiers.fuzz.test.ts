/**
 * Property-based tests of Remote Asset qualifiers: any qualifier list is
 * validated or refused with INVALID_ARGUMENT, a validated list always yields
 * canonical per-URI sets and request headers an HTTP request can carry, and
 * checksum.sri values round-trip through their writer.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { acceptsOrRefuses, fuzzParameters, hexString, isStatus } from '../../test/support/fuzz.js';
import { Code } from '../util/status.js';
import { headersOf, parseSri, qualifiersForUri, sha256SriOf, validateQualifiers } from './qualifiers.js';

const invalidArgument = isStatus(Code.INVALID_ARGUMENT);

const qualifierName = fc.oneof(
  fc.constantFrom('', 'checksum.sri', 'resource_type', 'vcs.branch', 'http_header:', 'http_header_url:'),
  fc
    .tuple(
      fc.constantFrom(
        'http_header:',
        'http_header_url:0:',
        'http_header_url:1:',
        'http_header_url:',
        'http_header_url:x:',
      ),
      fc.oneof(fc.constantFrom('Authorization', 'X-Token', 'bad name', 'a:b', 'é', ''), fc.string({ maxLength: 6 })),
    )
    .map(([prefix, rest]) => prefix + rest),
  fc.string({ maxLength: 12 }),
);
const sriLike = fc.oneof(
  hexString(64).map(sha256SriOf),
  fc.constantFrom('sha256-', 'sha512-AAAA', 'md5-abc', '  ', 'sha256-@@@', 'sha384-'.padEnd(71, 'A')),
  fc.string({ maxLength: 20 }),
);
const qualifierValue = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.constantFrom('Bearer x', 'a\r\nInjected: 1', 'tab\there', 'nul\0'),
  sriLike,
);
const qualifiers = fc.array(fc.record({ name: qualifierName, value: qualifierValue }), { maxLength: 6 });

describe('asset qualifiers (property-based)', () => {
  it('validates any qualifier list or refuses it with INVALID_ARGUMENT; a validated one gives sorted sets and sendable headers', () => {
    fc.assert(
      fc.property(qualifiers, fc.integer({ min: 1, max: 3 }), (list, uriCount) => {
        const validated = acceptsOrRefuses(() => {
          validateQualifiers(list, uriCount);
          return true;
        }, invalidArgument);
        if (!validated) return;
        for (let index = 0; index < uriCount; index++) {
          const canonical = qualifiersForUri(list, index, uriCount);
          const names = canonical.map((qualifier) => qualifier.name);
          assert.deepEqual(names, [...new Set(names)].sort());
          for (const [name, value] of Object.entries(headersOf(canonical))) {
            validateHeaderName(name);
            validateHeaderValue(name, value);
          }
        }
      }),
      fuzzParameters,
    );
  });

  it('parses any checksum.sri value or refuses it with INVALID_ARGUMENT', () => {
    fc.assert(
      fc.property(sriLike, (value) => {
        const hashes = acceptsOrRefuses(() => parseSri(value), invalidArgument);
        for (const hash of hashes ?? []) assert.equal(hash.digest.length, createHash(hash.algorithm).digest().length);
      }),
      fuzzParameters,
    );
  });

  it('reads back every sha256 SRI value it writes', () => {
    fc.assert(
      fc.property(hexString(64), (hex) => {
        assert.deepEqual(parseSri(sha256SriOf(hex)), [{ algorithm: 'sha256', digest: Buffer.from(hex, 'hex') }]);
      }),
      fuzzParameters,
    );
  });
});
