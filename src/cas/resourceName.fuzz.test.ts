/**
 * Property-based tests of the ByteStream resource-name parsers: any string a
 * client sends is parsed or refused with INVALID_ARGUMENT, the instance-name
 * helpers of the gRPC edge agree with the full parse, and every well-formed
 * name parses back into the parts it was written from.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { acceptsOrRefuses, fuzzParameters, hexString, isStatus, pathLikeString } from '../../test/support/fuzz.js';
import { SUPPORTED_DIGEST_FUNCTIONS } from '../digest/digest.js';
import { Code } from '../util/status.js';
import {
  type Compressor,
  instanceNameOfReadResource,
  instanceNameOfWriteResource,
  parseReadResourceName,
  parseWriteResourceName,
} from './resourceName.js';

const invalidArgument = isStatus(Code.INVALID_ARGUMENT);
const SHA256_HEX = 'a'.repeat(64);

/** Strings built from the pieces resource names are made of, and from anything else. */
const nameLike = pathLikeString(
  [
    '/',
    '/',
    'blobs',
    'uploads',
    'compressed-blobs',
    'zstd',
    'identity',
    'sha256',
    'SHA512',
    'md5',
    'main',
    SHA256_HEX,
    'f'.repeat(32),
    '0',
    '12',
    '9007199254740993',
    '-1',
    '.',
    '..',
    '\0',
    ' ',
  ],
  16,
);
const compressors = fc.constantFrom<Compressor[]>([], ['zstd'], ['identity', 'zstd']);

const instanceSegment = fc
  .string({ minLength: 1, maxLength: 12 })
  .filter(
    (segment) =>
      !segment.includes('/') &&
      !['blobs', 'uploads', 'compressed-blobs', 'actions', 'actionResults', 'operations', 'capabilities'].includes(
        segment,
      ),
  );
const wellFormed = fc.record({
  instance: fc.array(instanceSegment, { maxLength: 3 }),
  fn: fc.constantFrom(...SUPPORTED_DIGEST_FUNCTIONS),
  explicitFunction: fc.boolean(),
  compressed: fc.boolean(),
  size: fc.maxSafeNat(),
  uploadId: fc.uuid(),
  metadata: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  hashSeed: fc.nat(),
});

describe('resource names (property-based)', () => {
  it('refuses any malformed read name with INVALID_ARGUMENT, and finds the instance name as the parse does', () => {
    fc.assert(
      fc.property(nameLike, compressors, (name, supported) => {
        const parsed = acceptsOrRefuses(() => parseReadResourceName(name, supported), invalidArgument);
        const instance = acceptsOrRefuses(() => instanceNameOfReadResource(name), invalidArgument);
        if (parsed) assert.equal(instance, parsed.instanceName);
      }),
      fuzzParameters,
    );
  });

  it('refuses any malformed write name with INVALID_ARGUMENT, and finds the instance name as the parse does', () => {
    fc.assert(
      fc.property(nameLike, compressors, (name, supported) => {
        const parsed = acceptsOrRefuses(() => parseWriteResourceName(name, supported), invalidArgument);
        const instance = acceptsOrRefuses(() => instanceNameOfWriteResource(name), invalidArgument);
        if (parsed) assert.equal(instance, parsed.instanceName);
      }),
      fuzzParameters,
    );
  });

  it('parses every well-formed read and write name back into its parts', () => {
    fc.assert(
      fc.property(wellFormed, (parts) => {
        const hash = fc.sample(hexString(parts.fn.hexLength), { numRuns: 1, seed: parts.hashSeed })[0] as string;
        const prefix = parts.instance.map((segment) => `${segment}/`).join('');
        const blobPart = [
          parts.compressed ? 'compressed-blobs/zstd' : 'blobs',
          ...(parts.explicitFunction ? [parts.fn.name] : []),
          hash,
          String(parts.size),
        ].join('/');
        const expected = {
          instanceName: parts.instance.join('/'),
          digest: { hash, sizeBytes: parts.size },
          digestFunction: parts.fn,
          compressor: parts.compressed ? 'zstd' : 'identity',
        };
        assert.deepEqual(parseReadResourceName(`${prefix}${blobPart}`, ['zstd']), expected);
        const metadata = parts.metadata.map((segment) => `/${segment}`).join('');
        const writeName = `${prefix}uploads/${parts.uploadId}/${blobPart}${metadata}`;
        assert.deepEqual(parseWriteResourceName(writeName, ['zstd']), { ...expected, uploadId: parts.uploadId });
      }),
      fuzzParameters,
    );
  });
});
