/**
 * The HTTP port over TLS, with certificates made by openssl: HTTPS with the
 * server's certificate, followed when its files change; with a client CA, a
 * certificate is asked for but not required, probes answer without one, every
 * other path needs a verified one, whose subject is the caller.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { httpsRequest, type IssuedCertificate, makeTestAuthority, type TestAuthority } from '../../test/support/tls.js';
import { until } from '../../test/support/waiting.js';
import { enforcedAccess } from '../auth/accessPolicy.js';
import { CallerAuthenticator } from '../auth/callerAuthenticator.js';
import { ReloadingServerTls } from '../tls/serverTlsFiles.js';
import { httpAuthenticatorOf } from './httpAccessPolicy.js';
import { type RunningHttpServer, sendText, startHttpServer } from './httpServer.js';
import { healthRoutes } from './operatorRoutes.js';

/** The common name of the certificate the port presents to a new connection. */
function presentedCommonName(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const name = socket.getPeerCertificate().subject.CN;
      socket.destroy();
      resolve(String(name));
    });
    socket.on('error', reject);
  });
}

const portOf = (server: RunningHttpServer) => Number(server.address.split(':').pop());

describe('the HTTP port over TLS', () => {
  let directory: string;
  let authority: TestAuthority;
  let otherAuthority: TestAuthority;
  const certificateFile = () => join(directory, 'live.pem');
  const keyFile = () => join(directory, 'live.key');
  const install = (name: string) => {
    const issued = authority.issue(name, `/CN=${name}`, 'server');
    copyFileSync(issued.certificateFile, certificateFile());
    copyFileSync(issued.keyFile, keyFile());
  };

  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'granary-https-'));
    authority = makeTestAuthority(directory, 'ca');
    otherAuthority = makeTestAuthority(directory, 'other-ca');
  });
  after(() => rmSync(directory, { recursive: true, force: true }));

  it('serves HTTPS with the certificate and follows it when its files change', async () => {
    install('first');
    const tls = await ReloadingServerTls.open(
      { certificateFile: certificateFile(), keyFile: keyFile() },
      { pollIntervalMs: 50 },
    );
    const server = await startHttpServer({
      listen: '127.0.0.1:0',
      routes: healthRoutes(() => ({ ready: true })),
      tls: { ...tls.current(), subscribe: (listener) => tls.subscribe(listener) },
    });
    try {
      assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const probe = await httpsRequest(`${server.url}/healthz`, authority.caPem);
      assert.deepEqual([probe.status, probe.body], [200, 'ok\n']);
      await assert.rejects(fetch(`http://${server.address}/healthz`), 'plain HTTP is not served');
      assert.equal(await presentedCommonName(portOf(server), authority.caPem), 'first');
      install('second');
      await until(async () => (await presentedCommonName(portOf(server), authority.caPem)) === 'second', 10_000);
      assert.equal((await httpsRequest(`${server.url}/healthz`, authority.caPem)).status, 200);
    } finally {
      await server.close();
      tls.close();
    }
  });

  describe('with a client CA', () => {
    let server: RunningHttpServer;
    let tls: ReloadingServerTls;
    let client: IssuedCertificate;
    let stranger: IssuedCertificate;

    before(async () => {
      install('server');
      client = authority.issue('client', '/O=Acme/CN=ci-client', 'client');
      stranger = otherAuthority.issue('stranger', '/CN=ci-client', 'client');
      tls = await ReloadingServerTls.open({
        certificateFile: certificateFile(),
        keyFile: keyFile(),
        clientCertificateAuthorityFile: authority.caFile,
      });
      const policy = enforcedAccess(await CallerAuthenticator.open({ anonymous: 'none' }));
      server = await startHttpServer({
        listen: '127.0.0.1:0',
        routes: [
          ...healthRoutes(() => ({ ready: true })),
          {
            method: 'GET',
            path: '/whoami',
            scope: 'read',
            handle: ({ response, principal }) => sendText(response, 200, `${principal.name}\n`),
          },
          { method: 'GET', path: '/open', handle: ({ response }) => sendText(response, 200, 'open\n') },
        ],
        authenticator: httpAuthenticatorOf(policy, { clientCertificateRequired: true }),
        loginPath: '/login',
        tls: { ...tls.current(), subscribe: (listener) => tls.subscribe(listener) },
      });
    });
    after(async () => {
      await server.close();
      tls.close();
    });

    it("takes a verified certificate's subject as the caller", async () => {
      const answer = await httpsRequest(`${server.url}/whoami`, authority.caPem, { client });
      assert.deepEqual([answer.status, answer.body], [200, 'O=Acme,CN=ci-client\n']);
    });

    it('answers probes without a certificate and refuses every other path', async () => {
      assert.equal((await httpsRequest(`${server.url}/healthz`, authority.caPem)).status, 200);
      assert.equal((await httpsRequest(`${server.url}/readyz`, authority.caPem)).status, 200);
      const refused = await httpsRequest(`${server.url}/whoami`, authority.caPem);
      assert.equal(refused.status, 403);
      assert.match(refused.body, /requires a client certificate/);
      // A route that names no scope is not open either: only the probes are.
      assert.equal((await httpsRequest(`${server.url}/open`, authority.caPem)).status, 403);
    });

    it('never takes a certificate of another CA as an identity', async () => {
      assert.equal((await httpsRequest(`${server.url}/healthz`, authority.caPem, { client: stranger })).status, 200);
      assert.equal((await httpsRequest(`${server.url}/whoami`, authority.caPem, { client: stranger })).status, 403);
    });
  });
});
