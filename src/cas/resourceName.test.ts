import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestOf, SHA256, SHA384, SHA512 } from '../digest/digest.js';
import { Code, StatusError } from '../util/status.js';
import { parseReadResourceName, parseWriteResourceName } from './resourceName.js';

const blob = digestOf('hello resource names');
const sha512 = digestOf('hello resource names', SHA512);
const sha384 = digestOf('hello resource names', SHA384);
const path = `${blob.hash}/${blob.sizeBytes}`;
const UUID = '3e2c1f0a-8a47-4b43-9d2b-6a1c7ef0b9f1';

function assertInvalid(parse: () => unknown, why: string): void {
  assert.throws(
    parse,
    (error: unknown) => error instanceof StatusError && error.code === Code.INVALID_ARGUMENT,
    `expected INVALID_ARGUMENT: ${why}`,
  );
}

describe('parseReadResourceName', () => {
  it('parses a name without an instance name', () => {
    const resource = parseReadResourceName(`blobs/${path}`, []);
    assert.equal(resource.instanceName, '');
    assert.deepEqual(resource.digest, blob);
    assert.equal(resource.digestFunction, SHA256);
    assert.equal(resource.compressor, 'identity');
  });

  it('parses a single-segment instance name', () => {
    const resource = parseReadResourceName(`main/blobs/${path}`, []);
    assert.equal(resource.instanceName, 'main');
    assert.deepEqual(resource.digest, blob);
  });

  it('parses a multi-segment instance name', () => {
    const resource = parseReadResourceName(`projects/p1/instances/default_instance/blobs/${path}`, []);
    assert.equal(resource.instanceName, 'projects/p1/instances/default_instance');
    assert.deepEqual(resource.digest, blob);
  });

  it('accepts an explicit digest function segment', () => {
    const resource = parseReadResourceName(`inst/blobs/sha256/${path}`, []);
    assert.equal(resource.instanceName, 'inst');
    assert.equal(resource.digestFunction, SHA256);
    assert.deepEqual(resource.digest, blob);
    const explicit512 = parseReadResourceName(`blobs/sha512/${sha512.hash}/${sha512.sizeBytes}`, []);
    assert.equal(explicit512.digestFunction, SHA512);
    assert.deepEqual(explicit512.digest, sha512);
  });

  it('infers sha512 and sha384 from the hash length when no function is named', () => {
    assert.equal(parseReadResourceName(`blobs/${sha512.hash}/${sha512.sizeBytes}`, []).digestFunction, SHA512);
    assert.equal(parseReadResourceName(`a/b/blobs/${sha384.hash}/${sha384.sizeBytes}`, []).digestFunction, SHA384);
  });

  it('rejects a digest function segment that does not match the hash length', () => {
    assertInvalid(
      () => parseReadResourceName(`blobs/sha256/${sha512.hash}/${sha512.sizeBytes}`, []),
      'sha256 with 128 hex digits',
    );
  });

  it('rejects an unsupported digest function segment', () => {
    assertInvalid(() => parseReadResourceName(`blobs/blake3/${path}`, []), 'blake3');
    assertInvalid(() => parseReadResourceName(`blobs/sha256tree/${path}`, []), 'sha256tree');
  });

  it('rejects compressed-blobs with an unsupported compressor', () => {
    assertInvalid(() => parseReadResourceName(`compressed-blobs/zstd/${path}`, []), 'zstd not supported');
    assertInvalid(() => parseReadResourceName(`compressed-blobs/deflate/${path}`, ['zstd']), 'deflate');
    assertInvalid(
      () => parseReadResourceName(`compressed-blobs/identity/${path}`, ['zstd']),
      'identity is not a compressor',
    );
  });

  it('parses compressed-blobs with a supported compressor', () => {
    const resource = parseReadResourceName(`inst/compressed-blobs/zstd/sha256/${path}`, ['zstd']);
    assert.equal(resource.compressor, 'zstd');
    assert.equal(resource.instanceName, 'inst');
    assert.deepEqual(resource.digest, blob);
  });

  it('rejects segments after the size', () => {
    assertInvalid(() => parseReadResourceName(`blobs/${path}/extra`, []), 'trailing segment');
  });

  it('rejects malformed names', () => {
    const cases: Array<[string, string]> = [
      ['', 'empty name'],
      ['blobs', 'no hash'],
      [`blobs/${blob.hash}`, 'missing size'],
      [`blobs/${blob.hash}/`, 'empty size'],
      [`blobs/${blob.hash}/abc`, 'non-numeric size'],
      [`blobs/${blob.hash}/-1`, 'negative size'],
      [`blobs/${blob.hash}/1.5`, 'fractional size'],
      [`blobs/${blob.hash}/1e3`, 'exponent size'],
      [`blobs/${blob.hash}/99999999999999999999`, 'size beyond 2^53'],
      [`blobs/${blob.hash}/9007199254740993`, 'size just beyond 2^53'],
      [`blobs/${'z'.repeat(64)}/10`, 'non-hex hash'],
      [`blobs/${blob.hash.toUpperCase()}/${blob.sizeBytes}`, 'uppercase hash'],
      [`blobs/${blob.hash.slice(1)}/${blob.sizeBytes}`, '63 hex digits'],
      [`blobs/${blob.hash}0/${blob.sizeBytes}`, '65 hex digits'],
      [`blobs//${blob.sizeBytes}`, 'empty hash'],
      [`/blobs/${path}`, 'leading slash'],
      [`a//b/blobs/${path}`, 'empty instance segment'],
      [`uploads/blobs/${path}`, 'reserved word uploads in the instance name'],
      [`x/actionResults/y/blobs/${path}`, 'reserved word actionResults in the instance name'],
      [`operations/blobs/${path}`, 'reserved word operations in the instance name'],
      [`capabilities/blobs/${path}`, 'reserved word capabilities in the instance name'],
      [`inst/uploads/${UUID}/blobs/${path}`, 'an upload name used for reading'],
      [`inst/things/${path}`, 'no blobs segment'],
    ];
    for (const [name, why] of cases) assertInvalid(() => parseReadResourceName(name, []), why);
  });
});

describe('parseWriteResourceName', () => {
  it('parses an upload name without an instance name', () => {
    const resource = parseWriteResourceName(`uploads/${UUID}/blobs/${path}`, []);
    assert.equal(resource.instanceName, '');
    assert.equal(resource.uploadId, UUID);
    assert.deepEqual(resource.digest, blob);
    assert.equal(resource.compressor, 'identity');
  });

  it('parses an upload name with a multi-segment instance name', () => {
    const resource = parseWriteResourceName(`a/b/c/uploads/${UUID}/blobs/${path}`, []);
    assert.equal(resource.instanceName, 'a/b/c');
    assert.equal(resource.uploadId, UUID);
    assert.deepEqual(resource.digest, blob);
  });

  it('accepts an explicit digest function segment and infers sha512 by length', () => {
    const explicit = parseWriteResourceName(`inst/uploads/${UUID}/blobs/sha512/${sha512.hash}/${sha512.sizeBytes}`, []);
    assert.equal(explicit.digestFunction, SHA512);
    assert.deepEqual(explicit.digest, sha512);
    const inferred = parseWriteResourceName(`uploads/${UUID}/blobs/${sha512.hash}/${sha512.sizeBytes}`, []);
    assert.equal(inferred.digestFunction, SHA512);
  });

  it('ignores trailing metadata after the size', () => {
    const resource = parseWriteResourceName(`inst/uploads/${UUID}/blobs/${path}/some/metadata/here`, []);
    assert.equal(resource.instanceName, 'inst');
    assert.deepEqual(resource.digest, blob);
    const withFunction = parseWriteResourceName(`uploads/${UUID}/blobs/sha256/${path}/meta`, []);
    assert.deepEqual(withFunction.digest, blob);
    assert.equal(withFunction.digestFunction, SHA256);
  });

  it('rejects compressed-blobs with an unsupported compressor', () => {
    assertInvalid(() => parseWriteResourceName(`uploads/${UUID}/compressed-blobs/zstd/${path}`, []), 'zstd');
    assertInvalid(() => parseWriteResourceName(`uploads/${UUID}/compressed-blobs/brotli/${path}`, ['zstd']), 'brotli');
  });

  it('parses compressed-blobs with a supported compressor and metadata', () => {
    const resource = parseWriteResourceName(`uploads/${UUID}/compressed-blobs/zstd/${path}/meta`, ['zstd']);
    assert.equal(resource.compressor, 'zstd');
    assert.deepEqual(resource.digest, blob);
  });

  it('rejects malformed upload names', () => {
    const cases: Array<[string, string]> = [
      ['', 'empty name'],
      [`blobs/${path}`, 'a read name used for writing'],
      [`uploads/${UUID}`, 'nothing after the upload id'],
      [`uploads//blobs/${path}`, 'empty upload id'],
      [`uploads/${UUID}/blobs/${blob.hash}`, 'missing size'],
      [`uploads/${UUID}/blobs/${blob.hash}/x`, 'non-numeric size'],
      [`uploads/${UUID}/blobs/${blob.hash}/-5`, 'negative size'],
      [`uploads/${UUID}/blobs/${'g'.repeat(64)}/5`, 'non-hex hash'],
      [`uploads/${UUID}/blobs/${'a'.repeat(63)}/5`, 'short hash'],
      [`uploads/${UUID}/blobs/${'a'.repeat(100)}/5`, 'hash of no known length'],
      [`uploads/${UUID}/blobs/blake3/${path}`, 'unsupported digest function'],
      [`uploads/${UUID}/things/${path}`, 'no blobs segment'],
      [`blobs/uploads/${UUID}/blobs/${path}`, 'reserved word blobs in the instance name'],
      [`compressed-blobs/uploads/${UUID}/blobs/${path}`, 'reserved word compressed-blobs in the instance name'],
      [`x//uploads/${UUID}/blobs/${path}`, 'empty instance segment'],
    ];
    for (const [name, why] of cases) assertInvalid(() => parseWriteResourceName(name, []), why);
  });
});
