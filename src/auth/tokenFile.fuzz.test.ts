/**
 * Property-based tests of the access file parser: any text is read or refused
 * with an Error naming the file and line (never another kind of error), and
 * every valid list of entries, written out as YAML, reads back as written.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { acceptsOrRefuses, fuzzParameters, hexString, yamlLikeText } from '../../test/support/fuzz.js';
import { ALL_SCOPES } from './access.js';
import { parseAccessFile, tokenSha256 } from './tokenFile.js';

const SOURCE = 'tokens.yaml';
/** The documented refusal: a plain Error whose message starts with the file and line. */
const refusal = (error: unknown) =>
  error instanceof Error && error.constructor === Error && /^tokens\.yaml:\d+: /.test(error.message);

const credential = fc.oneof(
  fc
    .string({ minLength: 16, maxLength: 30 })
    .filter((token) => !/\s/.test(token))
    .map((token) => ({ token })),
  hexString(64).map((sha256) => ({ sha256 })),
  fc
    .tuple(fc.constantFrom('CN', 'O', 'OU'), fc.stringMatching(/^[A-Za-z0-9_.-]{1,10}$/))
    .map(([attribute, value]) => ({ 'client-certificate': `${attribute}=${value}` })),
);
const entries = fc
  .uniqueArray(
    fc.record({
      name: fc.string({ minLength: 1, maxLength: 10 }),
      credential,
      scopes: fc.subarray([...ALL_SCOPES], { minLength: 1 }),
      instances: fc.array(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 3 }),
    }),
    {
      maxLength: 4,
      selector: (entry) => entry.name,
    },
  )
  .filter((list) => new Set(list.map((entry) => JSON.stringify(entry.credential))).size === list.length);

describe('access file (property-based)', () => {
  it('reads any text or refuses it with an Error naming the file and line', () => {
    fc.assert(
      fc.property(
        yamlLikeText([
          'name: ',
          'token: ',
          'sha256: ',
          'client-certificate: ',
          'scopes: ',
          'instances: ',
          'read',
          '"*"',
          'ci-token-0123456789abcdef',
          'CN=x',
        ]),
        (text) => {
          acceptsOrRefuses(() => parseAccessFile(text, SOURCE), refusal);
        },
      ),
      fuzzParameters,
    );
  });

  it('reads back every valid list of entries written as YAML', () => {
    fc.assert(
      fc.property(entries, (list) => {
        const text = stringify(
          list.map(({ name, credential, scopes, instances }) => ({ name, ...credential, scopes, instances })),
        );
        const parsed = parseAccessFile(text, SOURCE);
        assert.deepEqual(
          parsed.map((entry) => ({
            name: entry.name,
            credential: entry.credential,
            scopes: [...entry.scopes],
            instances: entry.instances,
          })),
          list.map(({ name, credential, scopes, instances }) => ({
            name,
            credential:
              'token' in credential
                ? { kind: 'token', sha256Hex: tokenSha256(credential.token), plaintext: true }
                : 'sha256' in credential
                  ? { kind: 'token', sha256Hex: credential.sha256, plaintext: false }
                  : { kind: 'certificate', subject: credential['client-certificate'] },
            scopes,
            instances,
          })),
        );
      }),
      fuzzParameters,
    );
  });
});
