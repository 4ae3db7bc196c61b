/**
 * The upload quota through a real grpc-js client against an in-process server:
 * BatchUpdateBlobs and ByteStream Write spend a caller's allowance, and a caller
 * past it gets RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo details.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, writeResource } from '../../test/support/grpc.js';
import { unary } from '../client/connection.js';
import { digestOf } from '../digest/digest.js';
import type { BatchUpdateBlobsResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code, StatusError } from '../util/status.js';

let t: TestServer;
before(async () => {
  t = await startTestServer(undefined, { uploadBytesPerMinute: 1000 });
});
after(async () => {
  await t.close();
});

function batchUpload(data: Buffer): Promise<BatchUpdateBlobsResponse> {
  return unary<BatchUpdateBlobsResponse>((done) =>
    t.client.cas.batchUpdateBlobs(
      { instanceName: '', requests: [{ digest: digestOf(data), data, compressor: 0 }], digestFunction: 0 },
      done,
    ),
  );
}

async function refusal(promise: Promise<unknown>): Promise<StatusError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof StatusError, String(error));
    return error;
  }
  assert.fail('expected the upload to be refused');
}

describe('upload quota over gRPC', () => {
  it('refuses uploads past a caller’s allowance with RESOURCE_EXHAUSTED, QuotaFailure and RetryInfo', async () => {
    await batchUpload(randomBytes(900));
    // Still allowance left: this one goes through and puts the caller in debt.
    const blob = randomBytes(600);
    await writeResource(t.client, `uploads/${randomUUID()}/blobs/${digestOf(blob).hash}/600`, blob);
    const batch = await refusal(batchUpload(randomBytes(10)));
    assert.equal(batch.code, Code.RESOURCE_EXHAUSTED);
    assert.match(batch.message, /upload quota exceeded: anonymous caller from 127\.0\.0\.1/);
    assert.equal(batch.details.quotaFailure?.[0]?.subject, 'anonymous@127.0.0.1');
    assert.ok((batch.details.retryDelayMs ?? 0) > 20_000, `retry delay ${batch.details.retryDelayMs}`);
    const other = randomBytes(10);
    const write = await refusal(
      writeResource(t.client, `uploads/${randomUUID()}/blobs/${digestOf(other).hash}/10`, other),
    );
    assert.equal(write.code, Code.RESOURCE_EXHAUSTED);
    assert.ok(write.details.retryDelayMs !== undefined);
  });
});
