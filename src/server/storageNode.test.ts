import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { testBlob } from '../../test/support/blobStoreContract.js';
import { makeTestCertificates } from '../../test/support/tls.js';
import { connect } from '../client/connection.js';
import { GrpcBlobStore } from '../client/grpcBlobStore.js';
import { backgroundContext } from '../context/requestContext.js';
import { HealthClient, HealthCheckResponse_ServingStatus as ServingStatus } from '../gen/grpc/health/v1/health.js';
import type { DialTlsOptions } from '../grpc/dial.js';
import { getBuffer, putBuffer } from '../storage/blobStore.js';
import type { EvictionRound } from '../storage/eviction.js';
import { CountingStorageObserver } from '../storage/storageObserver.js';
import { startStorageNode } from './storageNode.js';

const context = backgroundContext();

function checkHealth(address: string, service: string): Promise<ServingStatus> {
  const client = new HealthClient(address, credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.check({ service }, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response.status);
    }),
  );
}

describe('startStorageNode', () => {
  it('reports the calls on its store, with their bytes, and its eviction rounds, under the name cas', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'granary-storage-node-'));
    const observer = new CountingStorageObserver();
    const evictions: Array<[string, EvictionRound]> = [];
    const node = await startStorageNode({
      listen: '127.0.0.1:0',
      directory,
      maximumSizeBytes: 1000,
      observers: { storage: observer, eviction: (store, round) => evictions.push([store, round]) },
    });
    const connection = connect(`grpc://${node.address}`);
    try {
      const cas = new GrpcBlobStore(connection);
      const first = testBlob(600, 1);
      const second = testBlob(600, 2);
      await putBuffer(context, cas, first.digest, first.data);
      assert.deepEqual(await getBuffer(context, cas, first.digest), first.data);
      await putBuffer(context, cas, second.digest, second.data);
      const written = observer.counters('cas', 'put').bytes + observer.counters('cas', 'putBatch').bytes;
      assert.equal(written, 1200);
      assert.equal(observer.counters('cas', 'get').bytes, 600);
      assert.deepEqual(
        evictions.map(([store, round]) => [store, round.blobs, round.bytes]),
        [['cas', 1, 600]],
      );
      assert.deepEqual(node.store.usage?.(), { usedBytes: 600, maximumBytes: 1000, blobCount: 1 });
    } finally {
      connection.close();
      await node.close();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('answers gRPC health checks: SERVING for itself and its services, NOT_FOUND for others', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'granary-storage-node-'));
    const node = await startStorageNode({ listen: '127.0.0.1:0', directory, maximumSizeBytes: 1000 });
    try {
      assert.equal(await checkHealth(node.address, ''), ServingStatus.SERVING);
      assert.equal(
        await checkHealth(node.address, 'build.bazel.remote.execution.v2.ContentAddressableStorage'),
        ServingStatus.SERVING,
      );
      await assert.rejects(checkHealth(node.address, 'build.bazel.remote.execution.v2.Execution'), {
        code: 5,
      });
      assert.equal(await node.health(''), 'SERVING');
    } finally {
      await node.close();
      await rm(directory, { recursive: true, force: true });
    }
    assert.equal(await node.health(''), 'NOT_SERVING');
  });

  it('with a client CA serves only callers holding a certificate it signed (mTLS), over TLS only', async () => {
    const certificates = makeTestCertificates();
    const directory = await mkdtemp(join(tmpdir(), 'granary-storage-node-'));
    const node = await startStorageNode({
      listen: '127.0.0.1:0',
      directory,
      maximumSizeBytes: 10_000,
      tls: {
        certificateChainPem: certificates.serverCertificatePem,
        privateKeyPem: certificates.serverKeyPem,
        clientCertificateAuthorityPem: certificates.caPem,
      },
    });
    const blob = testBlob(100, 3);
    const storeWith = (url: string, tls?: DialTlsOptions) => {
      const connection = connect(url, '', tls ? { tls } : {});
      return { connection, cas: new GrpcBlobStore(connection) };
    };
    const frontend = storeWith(`grpcs://localhost:${node.port}`, {
      certificateAuthorityPem: certificates.caPem,
      clientCertificateChainPem: certificates.clientCertificatePem,
      clientPrivateKeyPem: certificates.clientKeyPem,
    });
    const withoutCertificate = storeWith(`grpcs://localhost:${node.port}`, {
      certificateAuthorityPem: certificates.caPem,
    });
    const plain = storeWith(`grpc://127.0.0.1:${node.port}`);
    try {
      await putBuffer(context, frontend.cas, blob.digest, blob.data);
      assert.deepEqual(await getBuffer(context, frontend.cas, blob.digest), blob.data);
      // The handshake fails: grpc-js reports it as UNAVAILABLE, and the blob is never served.
      await assert.rejects(getBuffer(context, withoutCertificate.cas, blob.digest), { code: 14 });
      await assert.rejects(getBuffer(context, plain.cas, blob.digest), { code: 14 });
    } finally {
      for (const { connection } of [frontend, withoutCertificate, plain]) connection.close();
      await node.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
