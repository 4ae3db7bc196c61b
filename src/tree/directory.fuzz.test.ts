/**
 * Property-based tests of reading Directory and Tree messages from the CAS: any
 * bytes decode or are refused as a MalformedTreeError, and the checks accept a
 * decoded Directory exactly when its names are safe and unique, its digests well
 * formed and its symlink targets usable.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { acceptsOrRefuses, fuzzParameters, hexString } from '../../test/support/fuzz.js';
import { digestOf, SHA256 } from '../digest/digest.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { checkDirectory, decodeDirectory, MalformedTreeError } from './directory.js';
import { decodeTree } from './treeMessage.js';

const malformed = (error: unknown) => error instanceof MalformedTreeError;
const someDigest = digestOf('some bytes');

const name = fc.oneof(
  fc.constantFrom('a', 'b', 'é', '', '.', '..', 'a/b', '/', 'x\0y', 'n'.repeat(255), 'n'.repeat(256)),
  fc.string({ maxLength: 5 }),
);
const digest = fc.oneof(
  hexString(64).map((hash) => ({ hash, sizeBytes: 3 })),
  fc.record({ hash: fc.string({ maxLength: 70 }), sizeBytes: fc.integer({ min: -5, max: 5 }) }),
  fc.constant(undefined),
);
const directory = fc.record({
  files: fc.array(fc.record({ name, digest, isExecutable: fc.boolean(), nodeProperties: fc.constant(undefined) }), {
    maxLength: 4,
  }),
  directories: fc.array(fc.record({ name, digest }), { maxLength: 3 }),
  symlinks: fc.array(
    fc.record({
      name,
      target: fc.oneof(fc.constantFrom('', 'x\0', '../../etc', '/abs'), fc.string({ maxLength: 5 })),
      nodeProperties: fc.constant(undefined),
    }),
    { maxLength: 3 },
  ),
  nodeProperties: fc.constant(undefined),
});

/** The checks of checkDirectory with safeNames and SHA-256, written out independently. */
function isValid(candidate: Directory): boolean {
  const names = [...candidate.files, ...candidate.directories, ...candidate.symlinks].map((entry) => entry.name);
  const safe = (n: string) => n !== '' && n !== '.' && n !== '..' && !/[/\0]/.test(n) && Buffer.byteLength(n) <= 255;
  const digestOk = (d: { hash: string; sizeBytes: number } | undefined) =>
    d !== undefined && /^[0-9a-f]{64}$/.test(d.hash) && Number.isSafeInteger(d.sizeBytes) && d.sizeBytes >= 0;
  return (
    names.every(safe) &&
    new Set(names).size === names.length &&
    [...candidate.files, ...candidate.directories].every((entry) => digestOk(entry.digest)) &&
    candidate.symlinks.every((link) => link.target !== '' && !link.target.includes('\0'))
  );
}

describe('Directory and Tree messages (property-based)', () => {
  it('decodes any bytes as a Directory or a Tree, or refuses them as a MalformedTreeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        acceptsOrRefuses(() => decodeDirectory(Buffer.from(bytes), someDigest), malformed);
        acceptsOrRefuses(() => decodeTree(Buffer.from(bytes), someDigest), malformed);
      }),
      fuzzParameters,
    );
  });

  it('accepts a Directory exactly when its names, digests and symlink targets are valid', () => {
    fc.assert(
      fc.property(directory, (candidate) => {
        // Through the wire form, as the CAS hands it over.
        const decoded = decodeDirectory(Buffer.from(Directory.encode(candidate).finish()), someDigest);
        const checked = acceptsOrRefuses(
          () => checkDirectory(decoded, someDigest, { digestFunction: SHA256, safeNames: true }),
          malformed,
        );
        assert.equal(checked !== undefined, isValid(candidate));
      }),
      fuzzParameters,
    );
  });
});
