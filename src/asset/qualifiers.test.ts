import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Code, StatusError } from '../util/status.js';
import {
  headersOf,
  parseSri,
  publicQualifiers,
  qualifiersForUri,
  SriVerifier,
  validateQualifiers,
} from './qualifiers.js';

const q = (name: string, value = '') => ({ name, value });

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return Code[(error as StatusError).code];
  }
  return 'OK';
}

describe('qualifiers', () => {
  it("canonical per-URI sets are sorted, fold the URI's own headers in and lower-case header names", () => {
    const request = [
      q('resource_type', 'application/x-tar'),
      q('http_header:Authorization', 'Bearer all'),
      q('http_header_url:1:AUTHORIZATION', 'Bearer one'),
      q('checksum.sri', 'sha256-x'),
    ];
    assert.deepEqual(qualifiersForUri(request, 0, 2), [
      q('checksum.sri', 'sha256-x'),
      q('http_header:authorization', 'Bearer all'),
      q('resource_type', 'application/x-tar'),
    ]);
    assert.deepEqual(qualifiersForUri(request, 1, 2), [
      q('checksum.sri', 'sha256-x'),
      q('http_header:authorization', 'Bearer one'),
      q('resource_type', 'application/x-tar'),
    ]);
    assert.deepEqual(headersOf(qualifiersForUri(request, 1, 2)), { authorization: 'Bearer one' });
    assert.deepEqual(publicQualifiers(qualifiersForUri(request, 1, 2)), [
      q('checksum.sri', 'sha256-x'),
      q('resource_type', 'application/x-tar'),
    ]);
  });

  it('order of qualifiers does not matter', () => {
    assert.deepEqual(
      qualifiersForUri([q('b', '2'), q('a', '1')], 0, 1),
      qualifiersForUri([q('a', '1'), q('b', '2')], 0, 1),
    );
  });

  it('rejects repeated names, empty names and malformed header qualifiers; accepts unknown names', () => {
    assert.equal(
      code(() => validateQualifiers([q('a'), q('a')], 1)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => validateQualifiers([q('')], 1)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => validateQualifiers([q('http_header_url:1:X')], 1)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => validateQualifiers([q('http_header_url:x:X')], 1)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => validateQualifiers([q('http_header:')], 1)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => validateQualifiers([q('checksum.sri', 'md5-abc')], 1)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => validateQualifiers([q('vcs.commit', 'abc'), q('bazel.canonical_id', 'x'), q('made.up', 'y')], 1)),
      'OK',
    );
    assert.equal(
      code(() => validateQualifiers([q('http_header_url:0:X', 'v')], 1)),
      'OK',
    );
  });

  it('rejects header qualifiers that no HTTP request can carry', () => {
    // Found by the fuzz test: "http_header: " was accepted, and the download then failed as if the origin were down.
    for (const bad of [
      q('http_header: ', 'Bearer x'),
      q('http_header:bad name', 'v'),
      q('http_header_url:0:a:b', 'v'),
      q('http_header:X-Token', 'a\r\nInjected: 1'),
      q('http_header_url:0:X-Token', 'nul\0'),
    ]) {
      assert.equal(
        code(() => validateQualifiers([bad], 1)),
        'INVALID_ARGUMENT',
        JSON.stringify(bad),
      );
    }
    assert.equal(
      code(() => validateQualifiers([q('http_header:X-Token', 'tab\there é')], 1)),
      'OK',
    );
  });

  it('parses SRI values and checks content against the strongest algorithm', () => {
    const data = Buffer.from('content');
    const b64 = (alg: string, d: Buffer) => createHash(alg).update(d).digest('base64');
    const sri = `sha256-${b64('sha256', Buffer.from('other'))} sha512-${b64('sha512', data)}`;
    const hashes = parseSri(sri);
    assert.deepEqual(
      hashes.map((h) => h.algorithm),
      ['sha512'],
    );
    const ok = new SriVerifier(hashes);
    ok.update(data);
    assert.equal(ok.mismatch(), undefined);
    const bad = new SriVerifier(parseSri(`sha384-${b64('sha384', Buffer.from('other'))}`));
    bad.update(data);
    assert.match(bad.mismatch() ?? '', /checksum mismatch: expected sha384-.*, got sha384-/);
    assert.throws(() => parseSri('sha256-tooshort'), StatusError);
    assert.throws(() => parseSri(''), StatusError);
  });
});
