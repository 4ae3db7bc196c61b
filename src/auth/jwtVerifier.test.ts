import assert from 'node:assert/strict';
import { sign as cryptoSign, KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT, UnsecuredJWT } from 'jose';
import { rejectsWithCode } from '../../test/support/status.js';
import { Code } from '../util/status.js';
import { JwtVerifier, principalOfClaims } from './jwtVerifier.js';

const AUDIENCE = 'granary.example';
const NOW_S = 1_900_000_000;

type Algorithm = 'RS256' | 'ES256' | 'EdDSA';
interface SigningKey {
  algorithm: Algorithm;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function signingKey(algorithm: Algorithm, kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(algorithm, { extractable: true });
  return { algorithm, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid } };
}

function sign(key: SigningKey, claims: JWTPayload, header: { alg?: string; kid?: string } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: header.alg ?? key.algorithm, kid: header.kid ?? key.publicJwk.kid })
    .sign(key.privateKey);
}

const GOOD_CLAIMS: JWTPayload = {
  sub: 'alice',
  aud: AUDIENCE,
  exp: NOW_S + 600,
  scope: 'openid read cas-write',
  instances: ['team/*'],
};

describe('JwtVerifier', () => {
  const keys: Record<Algorithm, SigningKey> = {} as Record<Algorithm, SigningKey>;
  let stranger: SigningKey;
  let verifier: JwtVerifier;
  let directory: string;

  before(async () => {
    for (const algorithm of ['RS256', 'ES256', 'EdDSA'] as const)
      keys[algorithm] = await signingKey(algorithm, algorithm);
    stranger = await signingKey('ES256', 'ES256');
    verifier = new JwtVerifier({ keys: Object.values(keys).map((key) => key.publicJwk) }, { audience: AUDIENCE });
    directory = mkdtempSync(join(tmpdir(), 'granary-jwks-'));
  });
  after(() => rmSync(directory, { recursive: true, force: true }));

  for (const algorithm of ['RS256', 'ES256', 'EdDSA'] as const) {
    it(`accepts a ${algorithm} token and maps its claims to a principal`, async () => {
      const principal = await verifier.verify(await sign(keys[algorithm], GOOD_CLAIMS), NOW_S * 1000);
      assert.equal(principal.name, 'alice');
      assert.equal(principal.kind, 'jwt');
      assert.deepEqual([...principal.scopes], ['read', 'cas-write']);
      assert.deepEqual(principal.instances, ['team/*']);
    });
  }

  it('refuses an expired token', async () => {
    const token = await sign(keys.ES256, { ...GOOD_CLAIMS, exp: NOW_S - 120 });
    const error = await rejectsWithCode(verifier.verify(token, NOW_S * 1000), Code.UNAUTHENTICATED);
    assert.match(error.message, /expired/);
  });

  it('refuses a token whose expiry has passed since it was first verified', async () => {
    const token = await sign(keys.ES256, { ...GOOD_CLAIMS, exp: NOW_S + 60 });
    await verifier.verify(token, NOW_S * 1000);
    await rejectsWithCode(verifier.verify(token, (NOW_S + 120) * 1000), Code.UNAUTHENTICATED);
  });

  it('refuses a token without an expiry', async () => {
    const { exp: _exp, ...claims } = GOOD_CLAIMS;
    const error = await rejectsWithCode(
      verifier.verify(await sign(keys.RS256, claims), NOW_S * 1000),
      Code.UNAUTHENTICATED,
    );
    assert.match(error.message, /exp/);
  });

  it('refuses algorithms other than RS256, ES256 and EdDSA, even with a key of the set', async () => {
    // An RS384 signature by the RS256 key of the set (jose itself would refuse to make it).
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const signed = `${encode({ alg: 'RS384', kid: 'RS256' })}.${encode(GOOD_CLAIMS)}`;
    const signature = cryptoSign('sha384', Buffer.from(signed), KeyObject.from(keys.RS256.privateKey));
    const rs384 = `${signed}.${signature.toString('base64url')}`;
    const error = await rejectsWithCode(verifier.verify(rs384, NOW_S * 1000), Code.UNAUTHENTICATED);
    assert.match(error.message, /algorithm is not accepted/);
    const hs256 = await new SignJWT(GOOD_CLAIMS)
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('a secret someone hopes we confuse with a key'));
    await rejectsWithCode(verifier.verify(hs256, NOW_S * 1000), Code.UNAUTHENTICATED);
    const unsigned = new UnsecuredJWT(GOOD_CLAIMS).encode();
    await rejectsWithCode(verifier.verify(unsigned, NOW_S * 1000), Code.UNAUTHENTICATED);
  });

  it('refuses a token signed by a key that is not in the set, even under a known kid', async () => {
    const error = await rejectsWithCode(
      verifier.verify(await sign(stranger, GOOD_CLAIMS), NOW_S * 1000),
      Code.UNAUTHENTICATED,
    );
    assert.match(error.message, /signature does not verify/);
    const unknownKid = await sign(stranger, GOOD_CLAIMS, { kid: 'nobody' });
    assert.match(
      (await rejectsWithCode(verifier.verify(unknownKid, NOW_S * 1000), Code.UNAUTHENTICATED)).message,
      /no key of the JWK Set matches/,
    );
  });

  it('refuses a token for another audience or issuer', async () => {
    await rejectsWithCode(
      verifier.verify(await sign(keys.ES256, { ...GOOD_CLAIMS, aud: 'other-service' }), NOW_S * 1000),
      Code.UNAUTHENTICATED,
    );
    const strict = new JwtVerifier({ keys: [keys.ES256.publicJwk] }, { audience: AUDIENCE, issuer: 'https://idp' });
    await rejectsWithCode(
      strict.verify(await sign(keys.ES256, { ...GOOD_CLAIMS, iss: 'https://evil' }), NOW_S * 1000),
      Code.UNAUTHENTICATED,
    );
    const accepted = await strict.verify(await sign(keys.ES256, { ...GOOD_CLAIMS, iss: 'https://idp' }), NOW_S * 1000);
    assert.equal(accepted.name, 'alice');
  });

  it('refuses a garbled token', async () => {
    await rejectsWithCode(verifier.verify('abc.def.ghi', NOW_S * 1000), Code.UNAUTHENTICATED);
  });

  it('loads a JWK Set file, and refuses sets with secret or private keys', async () => {
    const path = join(directory, 'jwks.json');
    writeFileSync(path, JSON.stringify({ keys: [keys.EdDSA.publicJwk] }));
    const loaded = await JwtVerifier.load(path, { audience: AUDIENCE });
    assert.equal((await loaded.verify(await sign(keys.EdDSA, GOOD_CLAIMS), NOW_S * 1000)).name, 'alice');
    writeFileSync(path, JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }));
    await assert.rejects(JwtVerifier.load(path, { audience: AUDIENCE }), /only RSA, EC and OKP/);
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    writeFileSync(path, JSON.stringify({ keys: [await exportJWK(privateKey)] }));
    await assert.rejects(JwtVerifier.load(path, { audience: AUDIENCE }), /private part/);
    writeFileSync(path, '{"keys": []}');
    await assert.rejects(JwtVerifier.load(path, { audience: AUDIENCE }), /expected a JWK Set/);
    writeFileSync(path, 'not json');
    await assert.rejects(JwtVerifier.load(path, { audience: AUDIENCE }), /not a JSON file/);
  });
});

describe('principalOfClaims', () => {
  it('reads scopes from "scope" and "scp" and instances from a string or a list', () => {
    const principal = principalOfClaims({ sub: 'bot', scp: ['bots', 'unknown'], scope: 'read', instances: '*' });
    assert.deepEqual([...principal.scopes].sort(), ['bots', 'read']);
    assert.deepEqual(principal.instances, ['*']);
  });

  it('refuses claims without a subject or instances, or with malformed scopes', async () => {
    await rejectsWithCode(
      Promise.resolve().then(() => principalOfClaims({ instances: ['*'] })),
      Code.UNAUTHENTICATED,
    );
    const noInstances = await rejectsWithCode(
      Promise.resolve().then(() => principalOfClaims({ sub: 'x', scope: 'read' })),
      Code.UNAUTHENTICATED,
    );
    assert.match(noInstances.message, /no "instances" claim/);
    await rejectsWithCode(
      Promise.resolve().then(() => principalOfClaims({ sub: 'x', scope: 3, instances: ['*'] })),
      Code.UNAUTHENTICATED,
    );
  });
});
