import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { rejectsWithCode } from '../../test/support/status.js';
import { makeTestAuthority } from '../../test/support/tls.js';
import type { Principal } from '../context/requestContext.js';
import { Code } from '../util/status.js';
import { ANONYMOUS_READER, CallerAuthenticator, type PresentedCredentials } from './callerAuthenticator.js';
import { tokenSha256 } from './tokenFile.js';

const CI_TOKEN = 'ci-token-0123456789abcdef';
const READER_TOKEN = 'reader-token-0123456789';
const INTERNAL: Principal = { name: 'embedded-worker', kind: 'internal', scopes: new Set(['bots']), instances: ['*'] };

const bearer = (token: string): PresentedCredentials => ({
  authorization: [`Bearer ${token}`],
  verifiedClientCertificate: undefined,
});
const nothing: PresentedCredentials = { authorization: [], verifiedClientCertificate: undefined };

describe('CallerAuthenticator', () => {
  let directory: string;
  let accessFile: string;
  let listedCertificate: Buffer;
  let unlistedCertificate: Buffer;

  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'granary-authn-'));
    const authority = makeTestAuthority(directory);
    listedCertificate = new X509Certificate(authority.issue('builder', '/O=Acme/CN=builder-1', 'client').certificatePem)
      .raw;
    unlistedCertificate = new X509Certificate(authority.issue('stranger', '/CN=stranger', 'client').certificatePem).raw;
    accessFile = join(directory, 'tokens.yaml');
    writeFileSync(
      accessFile,
      [
        '- name: ci',
        `  token: ${CI_TOKEN}`,
        '  scopes: [read, cas-write, ac-write]',
        '  instances: ["*"]',
        '- name: reader',
        `  sha256: ${tokenSha256(READER_TOKEN)}`,
        '  scopes: [read]',
        '  instances: ["*"]',
        '- name: builders',
        '  client-certificate: O=Acme, CN=builder-1',
        '  scopes: [bots]',
        '  instances: ["*"]',
      ].join('\n'),
      { mode: 0o600 },
    );
  });
  after(() => rmSync(directory, { recursive: true, force: true }));

  const open = (anonymous: 'none' | 'read' = 'none', file: string | null = accessFile) =>
    CallerAuthenticator.open({
      accessFile: file ?? undefined,
      anonymous,
      internal: [{ token: 'internal-secret-token', principal: INTERNAL }],
    });

  it('identifies token holders, by plain token and by hash, whatever the case of "Bearer"', async () => {
    const authenticator = await open();
    const ci = await authenticator.authenticate(bearer(CI_TOKEN), 'read');
    assert.equal(ci.name, 'ci');
    assert.equal(ci.kind, 'token');
    assert.deepEqual([...ci.scopes], ['read', 'cas-write', 'ac-write']);
    const reader = await authenticator.authenticate(
      { authorization: [`bearer  ${READER_TOKEN}`], verifiedClientCertificate: undefined },
      'read',
    );
    assert.equal(reader.name, 'reader');
  });

  it('knows the internal credential of the embedded worker', async () => {
    assert.equal(await (await open()).authenticate(bearer('internal-secret-token'), 'bots'), INTERNAL);
  });

  it('refuses an unknown token, or another scheme, even when anonymous callers may read', async () => {
    const authenticator = await open('read');
    await rejectsWithCode(authenticator.authenticate(bearer('not-a-token-of-ours'), 'read'), Code.UNAUTHENTICATED);
    await rejectsWithCode(
      authenticator.authenticate(
        { authorization: ['Basic dXNlcjpwYXNz'], verifiedClientCertificate: undefined },
        'read',
      ),
      Code.UNAUTHENTICATED,
    );
    await rejectsWithCode(
      authenticator.authenticate(
        { authorization: [`Bearer ${CI_TOKEN}`, `Bearer ${READER_TOKEN}`], verifiedClientCertificate: undefined },
        'read',
      ),
      Code.UNAUTHENTICATED,
    );
  });

  it('refuses callers without credentials under --anonymous none, except for public methods', async () => {
    const authenticator = await open('none');
    const error = await rejectsWithCode(authenticator.authenticate(nothing, 'read'), Code.UNAUTHENTICATED);
    assert.match(error.message, /credentials are required/);
    const nobody = await authenticator.authenticate(nothing, 'public');
    assert.equal(nobody.scopes.size, 0);
  });

  it('lets callers without credentials read under --anonymous read', async () => {
    assert.equal(await (await open('read')).authenticate(nothing, 'read'), ANONYMOUS_READER);
  });

  it('identifies an mTLS caller by the subject the access file lists, and treats unlisted subjects as anonymous', async () => {
    const authenticator = await open('none');
    const builder = await authenticator.authenticate(
      { authorization: [], verifiedClientCertificate: listedCertificate },
      'bots',
    );
    assert.equal(builder.name, 'builders');
    assert.equal(builder.kind, 'certificate');
    const error = await rejectsWithCode(
      authenticator.authenticate({ authorization: [], verifiedClientCertificate: unlistedCertificate }, 'read'),
      Code.UNAUTHENTICATED,
    );
    assert.match(error.message, /"CN=stranger" is not in/);
    const withToken = await authenticator.authenticate(
      { authorization: [`Bearer ${CI_TOKEN}`], verifiedClientCertificate: unlistedCertificate },
      'read',
    );
    assert.equal(withToken.name, 'ci', 'a token names the caller on a certificate-authenticated connection');
  });

  it('trusts every certificate of the client CA for everything when there is no access file', async () => {
    const authenticator = await open('none', null);
    const caller = await authenticator.authenticate(
      { authorization: [], verifiedClientCertificate: unlistedCertificate },
      'admin',
    );
    assert.equal(caller.name, 'CN=stranger');
    assert.equal(caller.scopes.has('admin'), true);
  });

  it('takes JWTs when a JWK Set is configured', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwks = join(directory, 'jwks.json');
    writeFileSync(jwks, JSON.stringify({ keys: [await exportJWK(publicKey)] }));
    const authenticator = await CallerAuthenticator.open({
      accessFile,
      jwks: { path: jwks, settings: { audience: 'farm' } },
      anonymous: 'none',
    });
    const token = await new SignJWT({ sub: 'carol', aud: 'farm', scope: 'execute', instances: ['*'] })
      .setProtectedHeader({ alg: 'ES256' })
      .setExpirationTime('10m')
      .sign(privateKey);
    const carol = await authenticator.authenticate(bearer(token), 'execute');
    assert.equal(carol.name, 'carol');
    assert.equal(carol.kind, 'jwt');
    assert.equal((await authenticator.authenticate(bearer(CI_TOKEN), 'read')).name, 'ci');
  });

  it('reloads the access file, and keeps the previous callers when the new file is broken', async () => {
    const file = join(directory, 'reloaded.yaml');
    const write = (token: string, name: string) =>
      writeFileSync(file, `- name: ${name}\n  token: ${token}\n  scopes: [read]\n  instances: ["*"]\n`, {
        mode: 0o600,
      });
    write(CI_TOKEN, 'before');
    const authenticator = await open('none', file);
    assert.equal((await authenticator.authenticate(bearer(CI_TOKEN), 'read')).name, 'before');
    write(READER_TOKEN, 'after');
    assert.match(await authenticator.reload(), /reloaded 1 entries/);
    await rejectsWithCode(authenticator.authenticate(bearer(CI_TOKEN), 'read'), Code.UNAUTHENTICATED);
    assert.equal((await authenticator.authenticate(bearer(READER_TOKEN), 'read')).name, 'after');
    writeFileSync(file, '- name: broken\n  scopes: [read]\n');
    await assert.rejects(authenticator.reload(), /reloaded.yaml:1/);
    assert.equal((await authenticator.authenticate(bearer(READER_TOKEN), 'read')).name, 'after');
  });

  it('fails to open with a missing or invalid file', async () => {
    await assert.rejects(open('none', join(directory, 'missing.yaml')), /ENOENT/);
  });
});
