/**
 * Property-based tests of the JWT verifier: whatever a client sends as a bearer
 * token (any string, a token-shaped string with any header and payload, a
 * correctly signed token with any claims) is refused with UNAUTHENTICATED,
 * never another error, and a signed token is accepted exactly when its claims
 * name a caller with instances, for this farm, before it expires.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { CompactSign, type CryptoKey, exportJWK, generateKeyPair, type JWTPayload } from 'jose';
import { acceptsOrRefuses, acceptsOrRefusesAsync, isStatus } from '../../test/support/fuzz.js';
import { Code } from '../util/status.js';
import { JwtVerifier, principalOfClaims } from './jwtVerifier.js';

const AUDIENCE = 'granary.example';
const NOW_S = 1_900_000_000;
const unauthenticated = isStatus(Code.UNAUTHENTICATED);
const base64url = (value: unknown) => Buffer.from(JSON.stringify(value) ?? '').toString('base64url');

const anyJson = fc.jsonValue({ maxDepth: 2 });
const tokenShaped = fc
  .tuple(
    fc.oneof(
      fc.record(
        {
          alg: fc.oneof(fc.constantFrom('ES256', 'RS256', 'EdDSA', 'none', 'HS256'), fc.string({ maxLength: 6 })),
          kid: fc.oneof(fc.constant('k1'), fc.string({ maxLength: 4 })),
          typ: fc.constantFrom('JWT', 'at+jwt'),
          crit: fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }),
          b64: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
      anyJson,
    ),
    fc.oneof(anyJson, fc.dictionary(fc.constantFrom('sub', 'aud', 'exp', 'nbf', 'instances', 'scope'), anyJson)),
    fc.oneof(fc.string({ maxLength: 20 }), fc.base64String({ maxLength: 90 })),
  )
  .map(([header, payload, signature]) => `${base64url(header)}.${base64url(payload)}.${signature}`);
const bearer = fc.oneof(
  fc.string({ maxLength: 60 }),
  tokenShaped,
  fc.array(fc.base64String({ maxLength: 12 }), { maxLength: 5 }).map((parts) => parts.join('.')),
);

/** Claims of every type in every field a token can carry. */
const claims = fc.record(
  {
    sub: fc.oneof(fc.constantFrom('alice', ''), anyJson),
    aud: fc.oneof(fc.constant(AUDIENCE), fc.constant([AUDIENCE, 'other']), fc.constant('other'), anyJson),
    exp: fc.oneof(fc.constant(NOW_S + 600), fc.constant(NOW_S - 600), fc.double(), anyJson),
    nbf: fc.oneof(fc.constant(NOW_S + 600), fc.constant(NOW_S - 600), anyJson),
    scope: fc.oneof(fc.constantFrom('read cas-write', ' read  ', 'openid'), anyJson),
    scp: fc.oneof(fc.constant(['read', 'execute']), anyJson),
    instances: fc.oneof(fc.constant(['team/*']), fc.constant('*'), anyJson),
  },
  { requiredKeys: [] },
);

describe('JWT verification (property-based)', () => {
  let privateKey: CryptoKey;
  let verifier: JwtVerifier;

  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    privateKey = pair.privateKey;
    verifier = new JwtVerifier({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1' }] }, { audience: AUDIENCE });
  });

  it('refuses any string that is not a valid token with UNAUTHENTICATED', async () => {
    await fc.assert(
      fc.asyncProperty(bearer, async (token) => {
        const principal = await acceptsOrRefusesAsync(() => verifier.verify(token, NOW_S * 1000), unauthenticated);
        assert.equal(principal, undefined, 'a token nobody signed was accepted');
      }),
      { numRuns: 300 },
    );
  });

  it('accepts a signed token exactly when its claims name a caller with instances, for this farm, unexpired', async () => {
    await fc.assert(
      fc.asyncProperty(claims, async (payload) => {
        // Signed as raw JSON: SignJWT refuses some claims itself, and a hostile issuer's key need not.
        const token = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
          .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
          .sign(privateKey);
        const principal = await acceptsOrRefusesAsync(() => verifier.verify(token, NOW_S * 1000), unauthenticated);
        // The claims as the token carries them (JSON has no NaN, Infinity or undefined).
        const sent = JSON.parse(JSON.stringify(payload)) as Record<string, unknown>;
        const valid =
          typeof sent.sub === 'string' &&
          sent.sub !== '' &&
          (sent.aud === AUDIENCE || (Array.isArray(sent.aud) && sent.aud.includes(AUDIENCE))) &&
          typeof sent.exp === 'number' &&
          sent.exp > NOW_S - 30 &&
          (sent.nbf === undefined || (typeof sent.nbf === 'number' && sent.nbf <= NOW_S + 30)) &&
          wordsOrNothing(sent.scope) &&
          wordsOrNothing(sent.scp) &&
          (typeof sent.instances === 'string' ||
            (Array.isArray(sent.instances) && sent.instances.every((item) => typeof item === 'string')));
        assert.equal(principal !== undefined, valid, JSON.stringify(sent));
        if (principal) assert.equal(principal.name, sent.sub);
      }),
      { numRuns: 200 },
    );
  });

  it('maps any claims object to a principal or refuses it with UNAUTHENTICATED', () => {
    fc.assert(
      fc.property(fc.oneof(claims, fc.object()), (payload) => {
        acceptsOrRefuses(() => principalOfClaims(payload as JWTPayload), unauthenticated);
      }),
      { numRuns: 300 },
    );
  });
});

/** A scope claim Granary can read: absent, a string, or a list of strings. */
function wordsOrNothing(value: unknown): boolean {
  return (
    value === undefined ||
    typeof value === 'string' ||
    (Array.isArray(value) && value.every((w) => typeof w === 'string'))
  );
}
