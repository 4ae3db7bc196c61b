/**
 * Per-caller quotas of a real `granary serve`, seen by a real client: Bazel
 * 4.2.3 using the farm as a remote cache with a tiny upload quota has the
 * uploads past its allowance refused, warns ("Writing to Remote Cache", without
 * saying why: Bazel 4 prints only a count), and still builds; what it could not
 * upload is not cached. Another client from the same host shares that caller's
 * quota and sees the refusal itself: RESOURCE_EXHAUSTED with RetryInfo.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { unary } from '../../src/client/connection.js';
import { digestOf } from '../../src/digest/digest.js';
import { Code, StatusError } from '../../src/util/status.js';
import { bazel, processSummary } from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { requireCommand } from '../support/commands.js';
import { useFarm } from '../support/farm.js';

const skip = requireCommand('bazel');

describe('quotas of granary serve', { skip, timeout: 15 * 60_000 }, () => {
  const farm = useFarm({ name: 'quotas', embeddedWorkers: 0, serveFlags: ['--quota-upload-per-minute', '4KiB'] });

  test('Bazel past its upload quota is refused with RESOURCE_EXHAUSTED, warns, and still builds', async () => {
    const workspace = bazelWorkspace(4, farm.path('workspace'));
    const outputRoot = farm.path('root');
    const flags = [`--remote_cache=${farm.url}`, '--remote_timeout=60', '--remote_retries=1', '//:hello'];
    const first = bazel(workspace, outputRoot, 'build', flags);
    assert.equal(first.status, 0, first.output);
    assert.match(first.output, /WARNING: Writing to Remote Cache:\s+\d+ errors? during bulk transfer/, first.output);
    // The same caller (anonymous, from 127.0.0.1) through another client: refused, and told when to retry.
    const connection = farm.connect();
    try {
      const data = randomBytes(64);
      const refused = await unary((done) =>
        connection.cas.batchUpdateBlobs(
          { instanceName: '', requests: [{ digest: digestOf(data), data, compressor: 0 }], digestFunction: 0 },
          done,
        ),
      ).then(
        () => undefined,
        (error: unknown) => error,
      );
      assert.ok(refused instanceof StatusError, 'the upload past the quota is refused');
      assert.equal(refused.code, Code.RESOURCE_EXHAUSTED);
      assert.match(
        refused.message,
        /upload quota exceeded: anonymous caller from 127\.0\.0\.1 may upload 4KiB per minute/,
      );
      assert.ok((refused.details.retryDelayMs ?? 0) > 0, 'RetryInfo says when to retry');
    } finally {
      connection.close();
    }
    // Whatever was refused was not cached: a clean rebuild runs some actions again.
    assert.equal(bazel(workspace, outputRoot, 'clean', ['--expunge']).status, 0);
    const second = bazel(workspace, outputRoot, 'build', flags);
    assert.equal(second.status, 0, second.output);
    const summary = processSummary(second.output);
    assert.ok(
      Object.keys(summary).some((kind) => !['total', 'internal', 'remote cache hit'].includes(kind)),
      second.output,
    );
  });
});
