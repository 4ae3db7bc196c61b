/**
 * Bazel 4.2.3 (Debian bazel-bootstrap) against a real `granary serve` used as a
 * remote cache: a clean build uploads, a rebuild after `clean --expunge` is all
 * remote cache hits (also across a server restart, and without the bytes).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { bazel, processSummary, remoteCacheFlags, spawnsOtherThan } from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { requireCommand, run } from '../support/commands.js';
import { useFarm } from '../support/farm.js';

const skip = requireCommand('bazel');

describe('Bazel 4.2.3 with --remote_cache', { skip, timeout: 15 * 60_000 }, () => {
  const farm = useFarm({ name: 'bazel-cache', embeddedWorkers: 0, serveFlags: ['--max-size', '2GiB'] });
  const cacheFlags = () => remoteCacheFlags(farm.url);

  test('a rebuild after clean --expunge is served entirely from the remote cache, across a restart', async () => {
    const workspace = bazelWorkspace(4, farm.path('full'));
    const outputRoot = farm.path('root-full');
    const first = bazel(workspace, outputRoot, 'test', [...cacheFlags(), '//...']);
    assert.equal(first.status, 0, first.output);
    const firstSummary = processSummary(first.output);
    assert.ok(!firstSummary['remote cache hit'], `the first build cannot hit an empty cache: ${first.output}`);

    // Restart the server: the hits must come from disk.
    assert.equal(await farm.stopServer(), 0, farm.server.output());
    await farm.startServer();

    assert.equal(bazel(workspace, outputRoot, 'clean', ['--expunge']).status, 0);
    const second = bazel(workspace, outputRoot, 'test', [...cacheFlags(), '//...']);
    assert.equal(second.status, 0, second.output);
    const summary = processSummary(second.output);
    assert.deepEqual(
      spawnsOtherThan(summary, ['remote cache hit']),
      [],
      `every action should be a remote cache hit: ${second.output}`,
    );
    assert.ok((summary['remote cache hit'] ?? 0) >= 9, second.output);
    assert.match(second.output, /\/\/:greet_test\s+\(cached\) PASSED/);
    assert.equal(run(join(workspace, 'bazel-bin', 'hello'), [], workspace).trim(), 'Hello, Granary!');
    assert.equal(run('cat', [join(workspace, 'bazel-bin', 'tree', 'sub', 'b.txt')], workspace).trim(), 'beta');
  });

  test('builds without the bytes (--remote_download_minimal) hit the cache and can still fetch outputs', async () => {
    const workspace = bazelWorkspace(4, farm.path('minimal'));
    const outputRoot = farm.path('root-minimal');
    const flags = [...cacheFlags(), '--remote_download_minimal'];
    const first = bazel(workspace, outputRoot, 'build', [...flags, '//...']);
    assert.equal(first.status, 0, first.output);
    assert.equal(bazel(workspace, outputRoot, 'clean', ['--expunge']).status, 0);
    const second = bazel(workspace, outputRoot, 'build', [...flags, '//...']);
    assert.equal(second.status, 0, second.output);
    const summary = processSummary(second.output);
    assert.ok((summary['remote cache hit'] ?? 0) >= 7, second.output);
    assert.deepEqual(spawnsOtherThan(summary, ['remote cache hit']), [], second.output);
    // A later build that wants the bytes (Bazel 4's `run` does not fetch them under
    // --remote_download_minimal) downloads them from the CAS.
    const fetch = bazel(workspace, outputRoot, 'build', [...cacheFlags(), '--remote_download_toplevel', '//:hello']);
    assert.equal(fetch.status, 0, fetch.output);
    assert.equal(run(join(workspace, 'bazel-bin', 'hello'), [], workspace).trim(), 'Hello, Granary!');
  });
});
