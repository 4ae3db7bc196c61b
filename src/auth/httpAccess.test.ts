import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type IssuedCertificate, makeTestAuthority, type TestAuthority } from '../../test/support/tls.js';
import { enforcedAccess } from './accessPolicy.js';
import { CallerAuthenticator } from './callerAuthenticator.js';
import { admitHttpRequest, respondWithRefusal } from './httpAccess.js';

const VIEWER_TOKEN = 'viewer-token-0123456789';
const WRITER_TOKEN = 'writer-token-0123456789';

interface Reply {
  status: number;
  body: string;
  challenge: string | undefined;
}

/**
 * The HTTP side of the access policy, through a real HTTPS server that asks for
 * (but does not require) client certificates, as a metrics or UI port would: the
 * page needs `read` on instance "team/a", and answers with the caller's name.
 */
describe('admitHttpRequest', () => {
  let directory: string;
  let authority: TestAuthority;
  let dashboard: IssuedCertificate;
  let stranger: IssuedCertificate;
  let server: Server;
  let port: number;

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'granary-http-access-'));
    authority = makeTestAuthority(directory);
    const serverCertificate = authority.issue('server', '/CN=localhost', 'server');
    dashboard = authority.issue('dashboard', '/CN=dashboard', 'client');
    stranger = authority.issue('stranger', '/CN=stranger', 'client');
    const accessFile = join(directory, 'access.yaml');
    writeFileSync(
      accessFile,
      [
        '- name: viewer',
        `  token: ${VIEWER_TOKEN}`,
        '  scopes: [read]',
        '  instances: ["team/*"]',
        '- name: writer-elsewhere',
        `  token: ${WRITER_TOKEN}`,
        '  scopes: [read, cas-write]',
        '  instances: ["other"]',
        '- name: dashboards',
        '  client-certificate: CN=dashboard',
        '  scopes: [read]',
        '  instances: ["*"]',
      ].join('\n'),
      { mode: 0o600 },
    );
    const policy = enforcedAccess(await CallerAuthenticator.open({ accessFile, anonymous: 'none' }));
    server = createHttpsServer(
      {
        cert: serverCertificate.certificatePem,
        key: serverCertificate.keyPem,
        ca: authority.caPem,
        requestCert: true,
        rejectUnauthorized: false,
      },
      (request, response) => {
        admitHttpRequest(policy, request, 'read', 'team/a').then(
          (principal) => response.end(`hello ${principal.name}`),
          (error: unknown) => respondWithRefusal(response, error),
        );
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(directory, { recursive: true, force: true });
  });

  const get = (options: { token?: string; certificate?: IssuedCertificate }) =>
    new Promise<Reply>((resolve, reject) => {
      const request = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/metrics',
          ca: authority.caPem,
          servername: 'localhost',
          headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
          cert: options.certificate?.certificatePem,
          key: options.certificate?.keyPem,
          agent: false,
        },
        (response) => {
          let body = '';
          response.setEncoding('utf8').on('data', (chunk: string) => {
            body += chunk;
          });
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, body, challenge: response.headers['www-authenticate'] }),
          );
        },
      );
      request.on('error', reject);
      request.end();
    });

  it('admits a bearer token whose scopes and instances cover the page', async () => {
    assert.deepEqual(await get({ token: VIEWER_TOKEN }), { status: 200, body: 'hello viewer', challenge: undefined });
  });

  it('admits a verified client certificate whose subject is listed', async () => {
    const reply = await get({ certificate: dashboard });
    assert.equal(reply.status, 200, reply.body);
    assert.equal(reply.body, 'hello dashboards');
  });

  it('answers 401 with a Bearer challenge without credentials, or with an unknown token', async () => {
    for (const options of [{}, { token: 'not-a-known-token-at-all' }, { certificate: stranger }]) {
      const reply = await get(options);
      assert.equal(reply.status, 401, JSON.stringify(reply));
      assert.equal(reply.challenge, 'Bearer realm="granary"');
    }
  });

  it('answers 403 to a caller whose instances do not cover the page', async () => {
    const reply = await get({ token: WRITER_TOKEN });
    assert.equal(reply.status, 403);
    assert.match(reply.body, /writer-elsewhere/);
  });
});
