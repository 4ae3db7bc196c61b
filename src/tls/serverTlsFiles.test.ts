import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { makeTestAuthority, type TestAuthority } from '../../test/support/tls.js';
import { until } from '../../test/support/waiting.js';
import { createGrpcServer, type GrpcServer } from '../grpc/server.js';
import { checkServerTlsMaterial, ReloadingServerTls } from './serverTlsFiles.js';

/** The common name of the certificate a TLS server presents now. */
function presentedCommonName(port: number, caPem: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, ca: caPem, servername: 'localhost', ALPNProtocols: ['h2'] },
      () => {
        const name = socket.getPeerCertificate().subject.CN;
        socket.destroy();
        resolve(String(name));
      },
    );
    socket.on('error', reject);
  });
}

describe('ReloadingServerTls', () => {
  let directory: string;
  let authority: TestAuthority;
  const certificateFile = () => join(directory, 'live.pem');
  const keyFile = () => join(directory, 'live.key');

  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'granary-reload-'));
    authority = makeTestAuthority(directory);
  });
  after(() => rmSync(directory, { recursive: true, force: true }));

  const install = (name: string) => {
    const issued = authority.issue(name, `/CN=${name}`, 'server');
    copyFileSync(issued.certificateFile, certificateFile());
    copyFileSync(issued.keyFile, keyFile());
    return issued;
  };

  it('serves a renewed certificate to new connections once its files change, without a restart', async () => {
    install('first');
    const lines: string[] = [];
    const tls = await ReloadingServerTls.open(
      { certificateFile: certificateFile(), keyFile: keyFile() },
      { pollIntervalMs: 50, log: (line) => lines.push(line) },
    );
    let server: GrpcServer | undefined;
    try {
      server = createGrpcServer({
        listeners: [
          { address: '127.0.0.1:0', tls: { ...tls.current(), subscribe: (listener) => tls.subscribe(listener) } },
        ],
      });
      const [bound] = await server.listen();
      const port = (bound as { port: number }).port;
      assert.equal(await presentedCommonName(port, authority.caPem), 'first');

      install('second');
      await until(async () => (await presentedCommonName(port, authority.caPem)) === 'second', 15_000);
      assert.match(lines.join('\n'), /TLS certificate reloaded \(CN=second/);

      // A key that does not match the certificate (half a renewal) is refused; the served pair stays.
      const third = authority.issue('third', '/CN=third', 'server');
      copyFileSync(third.keyFile, keyFile());
      assert.equal(await tls.reload(), false);
      assert.match(lines.at(-1) ?? '', /keeping the previous certificate: .*does not belong to the certificate/);
      assert.equal(await presentedCommonName(port, authority.caPem), 'second');

      copyFileSync(third.certificateFile, certificateFile());
      assert.equal(await tls.reload(), true);
      assert.equal(await presentedCommonName(port, authority.caPem), 'third');
      assert.equal(await tls.reload(), false, 'unchanged files are not reloaded again');
    } finally {
      await server?.close();
      tls.close();
    }
  });

  it('fails to open with files that do not make a certificate, naming them', async () => {
    const issued = install('fourth');
    const other = authority.issue('fifth', '/CN=fifth', 'server');
    await assert.rejects(
      ReloadingServerTls.open({ certificateFile: issued.certificateFile, keyFile: other.keyFile }),
      /fourth.pem, .*fifth.key: the private key does not belong to the certificate/,
    );
    await assert.rejects(
      ReloadingServerTls.open({ certificateFile: join(directory, 'missing.pem'), keyFile: other.keyFile }),
      /cannot read .*missing.pem/,
    );
    assert.throws(
      () => checkServerTlsMaterial({ certificateChainPem: Buffer.from('junk'), privateKeyPem: issued.keyPem }),
      /not a PEM certificate/,
    );
  });
});
