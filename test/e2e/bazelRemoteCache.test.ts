/**
 * Bazel 4.2.3 (Debian bazel-bootstrap) against a real `granary serve` used as a
 * remote cache: a clean build uploads, a rebuild after `clean --expunge` is all
 * remote cache hits (also across a server restart, and without the bytes).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  bazel,
  copyFixture,
  type GranaryProcess,
  processSummary,
  removeQuietly,
  requireCommand,
  run,
  scratchDirectory,
  startGranary,
} from './harness.js';

const skip = requireCommand('bazel');

describe('Bazel 4.2.3 with --remote_cache', { skip, timeout: 15 * 60_000 }, () => {
  let scratch: string;
  let dataDirectory: string;
  let server: GranaryProcess;

  before(async () => {
    scratch = scratchDirectory('bazel-cache');
    dataDirectory = join(scratch, 'data');
    server = await startGranary(['serve', '--listen', '127.0.0.1:0', '--data', dataDirectory, '--max-size', '2GiB']);
  });

  after(async () => {
    await server?.stop();
    removeQuietly(scratch);
  });

  const cacheFlags = () => [`--remote_cache=${server.url}`, '--remote_timeout=60'];

  test('a rebuild after clean --expunge is served entirely from the remote cache, across a restart', async () => {
    const workspace = copyFixture('cc-workspace', join(scratch, 'full'));
    const outputRoot = join(scratch, 'root-full');
    const first = bazel(workspace, outputRoot, 'test', [...cacheFlags(), '//...']);
    assert.equal(first.status, 0, first.output);
    const firstSummary = processSummary(first.output);
    assert.ok(!firstSummary['remote cache hit'], `the first build cannot hit an empty cache: ${first.output}`);

    // Restart the server: the hits must come from disk.
    assert.equal(await server.stop(), 0, server.output());
    server = await startGranary(['serve', '--listen', server.address, '--data', dataDirectory, '--max-size', '2GiB']);

    assert.equal(bazel(workspace, outputRoot, 'clean', ['--expunge']).status, 0);
    const second = bazel(workspace, outputRoot, 'test', [...cacheFlags(), '//...']);
    assert.equal(second.status, 0, second.output);
    const summary = processSummary(second.output);
    const executed = Object.entries(summary).filter(
      ([kind]) => !['total', 'internal', 'remote cache hit'].includes(kind),
    );
    assert.deepEqual(executed, [], `every action should be a remote cache hit: ${second.output}`);
    assert.ok((summary['remote cache hit'] ?? 0) >= 9, second.output);
    assert.match(second.output, /\/\/:greet_test\s+\(cached\) PASSED/);
    assert.equal(run(join(workspace, 'bazel-bin', 'hello'), [], workspace).trim(), 'Hello, Granary!');
    assert.equal(run('cat', [join(workspace, 'bazel-bin', 'tree', 'sub', 'b.txt')], workspace).trim(), 'beta');
  });

  test('builds without the bytes (--remote_download_minimal) hit the cache and can still fetch outputs', async () => {
    const workspace = copyFixture('cc-workspace', join(scratch, 'minimal'));
    const outputRoot = join(scratch, 'root-minimal');
    const flags = [...cacheFlags(), '--remote_download_minimal'];
    const first = bazel(workspace, outputRoot, 'build', [...flags, '//...']);
    assert.equal(first.status, 0, first.output);
    assert.equal(bazel(workspace, outputRoot, 'clean', ['--expunge']).status, 0);
    const second = bazel(workspace, outputRoot, 'build', [...flags, '//...']);
    assert.equal(second.status, 0, second.output);
    const summary = processSummary(second.output);
    assert.ok((summary['remote cache hit'] ?? 0) >= 7, second.output);
    const executed = Object.entries(summary).filter(
      ([kind]) => !['total', 'internal', 'remote cache hit'].includes(kind),
    );
    assert.deepEqual(executed, [], second.output);
    // A later build that wants the bytes (Bazel 4's `run` does not fetch them under
    // --remote_download_minimal) downloads them from the CAS.
    const fetch = bazel(workspace, outputRoot, 'build', [...cacheFlags(), '--remote_download_toplevel', '//:hello']);
    assert.equal(fetch.status, 0, fetch.output);
    assert.equal(run(join(workspace, 'bazel-bin', 'hello'), [], workspace).trim(), 'Hello, Granary!');
  });
});
