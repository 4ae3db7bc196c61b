import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccessPolicy } from '../auth/accessPolicy.js';
import { OPEN_ACCESS } from '../auth/accessPolicy.js';
import type { Principal } from '../context/requestContext.js';
import { Code, StatusError } from '../util/status.js';
import { httpAuthenticatorOf, tokenOfCookie } from './httpAccessPolicy.js';
import { type HttpAuthenticationRequest, HttpError } from './httpServer.js';

const reader: Principal = { name: 'reader', kind: 'token', scopes: new Set(['read']), instances: ['ci/*'] };

/** A policy that knows one token, and refuses callers without one. */
const policy: AccessPolicy = {
  enforced: true,
  authenticate: async (credentials) => {
    if (credentials.authorization[0] === 'Bearer good') return reader;
    if (credentials.authorization.length > 0) throw new StatusError(Code.UNAUTHENTICATED, 'unknown token');
    throw new StatusError(Code.UNAUTHENTICATED, 'credentials are required');
  },
  authorize: () => {
    throw new StatusError(Code.PERMISSION_DENIED, 'token "reader" does not have the "admin" scope');
  },
};

function request(overrides: Partial<HttpAuthenticationRequest>): HttpAuthenticationRequest {
  return {
    method: 'GET',
    path: '/api/operations',
    headers: {},
    peer: '127.0.0.1:1',
    peerCertificate: undefined,
    requirement: 'read',
    ...overrides,
  };
}

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    assert.ok(error instanceof HttpError, String(error));
    return error.statusCode;
  }
}

describe('the access policy at the HTTP port', () => {
  const authenticate = httpAuthenticatorOf(policy);

  it('takes a bearer token from the Authorization header or, for reads, from the login cookie', async () => {
    assert.equal(await authenticate(request({ headers: { authorization: 'Bearer good' } })), reader);
    assert.equal(await authenticate(request({ headers: { cookie: 'a=b; granary_token=good' } })), reader);
    assert.equal(
      await statusOf(
        Promise.resolve(authenticate(request({ method: 'POST', headers: { cookie: 'granary_token=good' } }))),
      ),
      401,
      'a cookie does not authenticate a request that could change something',
    );
  });

  it('answers 401 without or with a wrong credential, and 403 to a caller without the scope', async () => {
    assert.equal(await statusOf(Promise.resolve(authenticate(request({})))), 401);
    assert.equal(
      await statusOf(Promise.resolve(authenticate(request({ headers: { authorization: 'Bearer bad' } })))),
      401,
    );
    assert.equal(
      await statusOf(
        Promise.resolve(authenticate(request({ headers: { authorization: 'Bearer good' }, requirement: 'admin' }))),
      ),
      403,
    );
  });

  it('lets everyone in when no authentication is configured', async () => {
    const open = httpAuthenticatorOf(OPEN_ACCESS);
    assert.equal((await open(request({ requirement: 'admin' }))).scopes.has('admin'), true);
  });

  it('reads the token of the login cookie, and nothing from a malformed one', () => {
    assert.equal(tokenOfCookie('granary_token=abc%3D'), 'abc=');
    assert.equal(tokenOfCookie('other=1'), undefined);
    assert.equal(tokenOfCookie('granary_token=%E0%A4%A'), undefined);
    assert.equal(tokenOfCookie(undefined), undefined);
  });
});
