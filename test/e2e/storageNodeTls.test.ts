/**
 * A storage node behind mutual TLS, through the real command lines: `granary
 * storage --tls-cert --tls-key --tls-client-ca` serves only callers with a
 * certificate of the client CA, `granary serve --storage-node grpcs://...
 * --storage-node-tls-*` keeps its CAS there, and a frontend without the client
 * certificate cannot. The node's HTTP port is HTTPS: probes answer without a
 * certificate, metrics do not.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from '../../src/client/connection.js';
import { GrpcBlobStore } from '../../src/client/grpcBlobStore.js';
import { backgroundContext } from '../../src/context/requestContext.js';
import { getBuffer, putBuffer } from '../../src/storage/blobStore.js';
import { testBlob } from '../support/blobStoreContract.js';
import { type GranaryProcess, startGranary } from '../support/granaryProcess.js';
import { removeQuietly, scratchDirectory } from '../support/scratch.js';
import { httpsRequest, type IssuedCertificate, makeTestAuthority, type TestAuthority } from '../support/tls.js';
import { until } from '../support/waiting.js';

const context = backgroundContext();

describe('granary storage behind mutual TLS, used by granary serve', { timeout: 180_000 }, () => {
  let scratch: string;
  let authority: TestAuthority;
  let frontendCertificate: IssuedCertificate;
  let node: GranaryProcess;
  let nodeHttps: string;
  const frontends: GranaryProcess[] = [];

  const startFrontend = (name: string, certificate: IssuedCertificate) =>
    startGranary([
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--http-listen',
      'none',
      '--workers',
      '0',
      '--data',
      join(scratch, name),
      '--storage-node',
      `grpcs://localhost:${node.address.split(':').pop()}`,
      '--storage-node-tls-ca',
      authority.caFile,
      '--storage-node-tls-cert',
      certificate.certificateFile,
      '--storage-node-tls-key',
      certificate.keyFile,
    ]).then((process) => {
      frontends.push(process);
      return process;
    });

  before(async () => {
    scratch = scratchDirectory('storage-tls');
    authority = makeTestAuthority(scratch, 'ca');
    const server = authority.issue('node', '/CN=localhost', 'server');
    frontendCertificate = authority.issue('frontend', '/CN=frontend-1', 'client');
    node = await startGranary([
      'storage',
      '--listen',
      '127.0.0.1:0',
      '--http-listen',
      '127.0.0.1:0',
      '--data',
      join(scratch, 'node'),
      '--tls-cert',
      server.certificateFile,
      '--tls-key',
      server.keyFile,
      '--tls-client-ca',
      authority.caFile,
    ]);
    // The lines after "serving on" may still be on their way.
    await until(() => /TLS with /.test(node.output()), 10_000);
    const https = /metrics and health on (\S+)/.exec(node.output());
    assert.ok(https, node.output());
    nodeHttps = (https[1] as string).replace('127.0.0.1', 'localhost');
  });

  after(async () => {
    for (const frontend of frontends) await frontend.stop();
    await node?.stop();
    removeQuietly(scratch);
  });

  test('the node says it serves TLS with client certificates required', () => {
    assert.match(node.output(), /TLS with .*callers must present a certificate signed by .*ca\.pem \(mTLS\)/);
    assert.match(nodeHttps, /^https:\/\//);
  });

  test('a frontend with a certificate of the client CA keeps its blobs on the node', async () => {
    const frontend = await startFrontend('frontend', frontendCertificate);
    const blob = testBlob(5000, 7);
    const viaFrontend = connect(frontend.url);
    const direct = connect(`grpcs://localhost:${node.address.split(':').pop()}`, '', {
      tls: {
        certificateAuthorityPem: authority.caPem,
        clientCertificateChainPem: frontendCertificate.certificatePem,
        clientPrivateKeyPem: frontendCertificate.keyPem,
      },
    });
    try {
      await putBuffer(context, new GrpcBlobStore(viaFrontend), blob.digest, blob.data);
      assert.deepEqual(await getBuffer(context, new GrpcBlobStore(direct), blob.digest), blob.data);
    } finally {
      viaFrontend.close();
      direct.close();
    }
  });

  test('a frontend whose certificate another CA signed cannot store anything there', async () => {
    const stranger = makeTestAuthority(scratch, 'other-ca').issue('stranger', '/CN=stranger', 'client');
    const frontend = await startFrontend('stranger', stranger);
    const blob = testBlob(5000, 8);
    const viaFrontend = connect(frontend.url);
    try {
      await assert.rejects(putBuffer(context, new GrpcBlobStore(viaFrontend), blob.digest, blob.data), {
        code: 14,
      });
    } finally {
      viaFrontend.close();
    }
  });

  test('the HTTP port is HTTPS: /healthz answers a probe without a certificate, /metrics needs one', async () => {
    assert.equal((await httpsRequest(`${nodeHttps}/healthz`, authority.caPem)).status, 200);
    assert.equal((await httpsRequest(`${nodeHttps}/metrics`, authority.caPem)).status, 403);
    const withCertificate = await httpsRequest(`${nodeHttps}/metrics`, authority.caPem, {
      client: frontendCertificate,
    });
    assert.equal(withCertificate.status, 200);
    assert.match(withCertificate.body, /^granary_storage_blobs\{store="cas"\} [1-9]/m);
  });
});
