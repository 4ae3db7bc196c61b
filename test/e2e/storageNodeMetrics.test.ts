/**
 * `granary storage` started through the real command line with --http-listen and
 * --log-format json: it logs JSON lines, answers /healthz and /readyz, and its
 * /metrics move as blobs are written, read and evicted.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Connection, connect } from '../../src/client/connection.js';
import { GrpcBlobStore } from '../../src/client/grpcBlobStore.js';
import { backgroundContext } from '../../src/context/requestContext.js';
import { getBuffer, putBuffer } from '../../src/storage/blobStore.js';
import { testBlob } from '../support/blobStoreContract.js';
import { type GranaryProcess, startGranary } from '../support/granaryProcess.js';
import { sample } from '../support/metricsText.js';
import { removeQuietly, scratchDirectory } from '../support/scratch.js';

const context = backgroundContext();

describe('granary storage with --http-listen and --log-format json', { timeout: 120_000 }, () => {
  let scratch: string;
  let node: GranaryProcess;
  let connection: Connection;
  let httpUrl: string;

  before(async () => {
    scratch = scratchDirectory('storage-metrics');
    node = await startGranary([
      'storage',
      '--listen',
      '127.0.0.1:0',
      '--http-listen',
      '127.0.0.1:0',
      '--log-format',
      'json',
      '--data',
      join(scratch, 'data'),
      '--max-size',
      '1000',
    ]);
    connection = connect(node.url);
  });

  after(async () => {
    connection?.close();
    await node?.stop();
    removeQuietly(scratch);
  });

  test('logs JSON lines, naming its HTTP port in the line that says it serves', () => {
    const lines = node
      .output()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const serving = lines.find((line) => line.event === 'serving');
    assert.ok(serving, node.output());
    assert.equal(serving.component, 'granary storage');
    assert.equal(serving.address, node.address);
    assert.match(String(serving.http), /^http:\/\/127\.0\.0\.1:\d+$/);
    httpUrl = String(serving.http);
  });

  test('is healthy and ready, and its metrics count what was written, read and evicted', async () => {
    assert.equal((await fetch(`${httpUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${httpUrl}/readyz`)).status, 200);
    const cas = new GrpcBlobStore(connection);
    const first = testBlob(600, 1);
    const second = testBlob(600, 2);
    await putBuffer(context, cas, first.digest, first.data);
    assert.deepEqual(await getBuffer(context, cas, first.digest), first.data);
    // 1000 bytes at most: the second blob evicts the first.
    await putBuffer(context, cas, second.digest, second.data);

    const metrics = await (await fetch(`${httpUrl}/metrics`)).text();
    const written =
      (sample(metrics, 'granary_storage_operation_bytes_total{store="cas",operation="put"}') ?? 0) +
      (sample(metrics, 'granary_storage_operation_bytes_total{store="cas",operation="put_batch"}') ?? 0);
    assert.equal(written, 1200, metrics);
    assert.equal(sample(metrics, 'granary_storage_operation_bytes_total{store="cas",operation="get"}'), 600);
    assert.equal(sample(metrics, 'granary_storage_blobs{store="cas"}'), 1);
    assert.equal(sample(metrics, 'granary_storage_used_bytes{store="cas"}'), 600);
    assert.equal(sample(metrics, 'granary_storage_capacity_bytes{store="cas"}'), 1000);
    assert.equal(sample(metrics, 'granary_storage_evicted_blobs_total{store="cas"}'), 1);
    assert.equal(sample(metrics, 'granary_storage_evicted_bytes_total{store="cas"}'), 600);
    assert.match(
      metrics,
      /^granary_grpc_server_handled_total\{[^}]*service="build\.bazel\.remote\.execution\.v2\.ContentAddressableStorage"/m,
    );
    assert.match(metrics, /^granary_process_cpu_seconds_total /m);
    assert.ok(
      node.output().includes('"event":"eviction"'),
      `the eviction round is logged as a JSON line:\n${node.output()}`,
    );
  });
});
