/**
 * Bazel 7.7.1 (Debian sid's bazel-bootstrap, run inside the sid root made by
 * test/e2e/sidroot/make-sidroot.sh) against `granary serve` on the host, used as a
 * remote cache: Bazel 7 moves every blob through ByteStream, sends both
 * output_files and output_paths, and builds without the bytes by default
 * (--remote_download_outputs=toplevel). Skipped locally when the root cannot be
 * made; in CI a missing root is a failure.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import {
  execPropertyFlags,
  processSummary,
  remoteCacheFlags,
  remoteExecutionFlags,
  spawnsOtherThan,
} from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { useFarm } from '../support/farm.js';
import { BAZEL7_ZSTD_STARTUP, bazel7, inSidroot, prepareSidroot } from '../support/sidroot.js';

const sid = prepareSidroot();

/** What ran other than as a remote cache hit. */
const executedLocally = (summary: Record<string, number>) => spawnsOtherThan(summary, ['remote cache hit']);

describe('Bazel 7.7.1 (Debian sid) with --remote_cache', { skip: sid.skip, timeout: 20 * 60_000 }, () => {
  before(() => assert.equal(sid.error, '', sid.error));
  const farm = useFarm({ name: 'modern-bazel', embeddedWorkers: 0, serveFlags: ['--max-size', '2GiB'] });
  let scratch: string;

  before(() => {
    scratch = farm.scratch;
  });

  const workspaceCopy = (name: string) => bazelWorkspace(7, join(scratch, name));
  const cacheFlags = () => remoteCacheFlags(farm.url);

  test('the tools are the expected versions, and user namespaces work inside the root', () => {
    const versions = inSidroot(sid.root, ['sh', '-c', 'bazel --version; bst --version; siso version | head -1'], {
      binds: [scratch],
      env: { HOME: scratch },
    });
    assert.equal(versions.status, 0, versions.output);
    assert.match(versions.stdout, /^bazel 7\.7\.1$/m);
    assert.match(versions.stdout, /^2\.8\.1$/m);
    assert.match(versions.stdout, /siso v\d/);
    const bwrap = inSidroot(sid.root, ['bwrap', '--ro-bind', '/', '/', '--dev', '/dev', 'true']);
    assert.equal(bwrap.status, 0, `bubblewrap inside the root: ${bwrap.output}`);
  });

  test('a clean build uploads; after clean --expunge every action is a remote cache hit, without the bytes', async () => {
    const workspace = workspaceCopy('ws');
    const outputRoot = join(scratch, 'out');
    const first = await bazel7(sid.root, scratch, workspace, outputRoot, 'test', [...cacheFlags(), '//...']);
    assert.equal(first.status, 0, first.output);
    const firstSummary = processSummary(first.output);
    assert.ok(!firstSummary['remote cache hit'], `the first build cannot hit an empty cache: ${first.output}`);
    // Bazel's own sandbox (user namespaces) works inside the root.
    assert.ok((firstSummary['linux-sandbox'] ?? 0) >= 5, first.output);

    const clean = await bazel7(sid.root, scratch, workspace, outputRoot, 'clean', ['--expunge']);
    assert.equal(clean.status, 0, clean.output);
    const second = await bazel7(sid.root, scratch, workspace, outputRoot, 'test', [...cacheFlags(), '//...']);
    assert.equal(second.status, 0, second.output);
    const summary = processSummary(second.output);
    assert.deepEqual(executedLocally(summary), [], `every action should be a remote cache hit: ${second.output}`);
    assert.ok((summary['remote cache hit'] ?? 0) >= 8, second.output);
    assert.match(second.output, /\/\/:greet_test\s+\(cached\) PASSED/);

    // Builds without the bytes (toplevel): top-level outputs are downloaded,
    // intermediate ones (object files) stay in the remote cache.
    const bin = join(workspace, 'bazel-bin');
    assert.ok(existsSync(join(bin, 'hello')), 'the top-level binary is downloaded');
    assert.ok(!existsSync(join(bin, '_objs', 'greet', 'greet.pic.o')), 'object files are not downloaded');
    const hello = inSidroot(sid.root, [join(bin, 'hello')], { binds: [scratch] });
    assert.equal(hello.status, 0, hello.output);
    assert.equal(hello.stdout.trim(), 'Hello, Granary!');

    // A later build that needs an intermediate output it never downloaded: relinking
    // hello after a change to hello.cc takes greet's objects from the remote cache.
    appendFileSync(join(workspace, 'hello.cc'), '\n// changed after the cached build\n');
    const third = await bazel7(sid.root, scratch, workspace, outputRoot, 'build', [...cacheFlags(), '//:hello']);
    assert.equal(third.status, 0, third.output);
    const relinked = inSidroot(sid.root, [join(bin, 'hello')], { binds: [scratch] });
    assert.equal(relinked.stdout.trim(), 'Hello, Granary!', relinked.output);
  });

  test('--remote_download_minimal, then bazel run fetches the binary from the cache', async () => {
    const workspace = workspaceCopy('ws-minimal');
    const outputRoot = join(scratch, 'out-minimal');
    const flags = [...cacheFlags(), '--remote_download_minimal'];
    const first = await bazel7(sid.root, scratch, workspace, outputRoot, 'build', [...flags, '//...']);
    assert.equal(first.status, 0, first.output);
    assert.ok(!existsSync(join(workspace, 'bazel-bin', 'banner.txt')), 'nothing is downloaded');
    const run = await bazel7(sid.root, scratch, workspace, outputRoot, 'run', [...flags, '//:hello']);
    assert.equal(run.status, 0, run.output);
    assert.match(run.stdout, /^Hello, Granary!$/m);
  });

  test('--remote_cache_compression (ZSTD) reaches the cache', async (t) => {
    const workspace = workspaceCopy('ws-zstd');
    const outputRoot = join(scratch, 'out-zstd');
    const flags = [...cacheFlags(), '--remote_cache_compression', '--remote_download_all'];
    const build = () =>
      bazel7(sid.root, scratch, workspace, outputRoot, 'build', [...flags, '//...'], BAZEL7_ZSTD_STARTUP);
    const first = await build();
    assert.equal(first.status, 0, first.output);
    if (/does not support compression/.test(first.output)) {
      // Bazel then builds without the remote cache at all.
      t.skip('the server advertises no ZSTD in supported_compressors');
      return;
    }
    assert.doesNotMatch(first.output, /WARNING: Remote Cache/, first.output);
    const clean = await bazel7(sid.root, scratch, workspace, outputRoot, 'clean', ['--expunge'], BAZEL7_ZSTD_STARTUP);
    assert.equal(clean.status, 0, clean.output);
    const second = await build();
    assert.equal(second.status, 0, second.output);
    assert.doesNotMatch(second.output, /WARNING: Remote Cache/, second.output);
    const summary = processSummary(second.output);
    assert.deepEqual(executedLocally(summary), [], second.output);
    assert.ok((summary['remote cache hit'] ?? 0) >= 8, second.output);
    assert.equal(readFileSync(join(workspace, 'bazel-bin', 'banner.txt'), 'utf8'), 'BUILT BY BAZEL 7\n');
  });
});

describe('Bazel 7.7.1 remote execution on a Granary worker with the sid root as its execution root', {
  skip: sid.skip,
  timeout: 20 * 60_000,
}, () => {
  before(() => assert.equal(sid.error, '', sid.error));
  const farm = useFarm({
    name: 'modern-bazel-exec',
    embeddedWorkers: 0,
    workers: [{ name: 'granary-sid', slots: 2, flags: ['--execution-root', `debian-sid=${sid.root}`] }],
  });
  let scratch: string;

  before(() => {
    scratch = farm.scratch;
  });

  test('C++ builds and tests with the same toolchain as the client; the rebuild is all cache hits', async () => {
    const workspace = bazelWorkspace(7, scratch);
    const outputRoot = join(scratch, 'out');
    const flags = [...remoteExecutionFlags(farm.url), ...execPropertyFlags('execution-root=debian-sid')];
    const first = await bazel7(sid.root, scratch, workspace, outputRoot, 'test', [...flags, '//...']);
    assert.equal(first.status, 0, first.output);
    const summary = processSummary(first.output);
    assert.deepEqual(
      executedLocally(summary).filter(([kind]) => kind !== 'remote'),
      [],
      first.output,
    );
    assert.ok((summary.remote ?? 0) >= 8, `actions should run on the Granary worker: ${first.output}`);
    assert.ok(farm.workers[0]?.output().includes('executing'), 'the Granary worker ran them');

    const clean = await bazel7(sid.root, scratch, workspace, outputRoot, 'clean', ['--expunge']);
    assert.equal(clean.status, 0, clean.output);
    const second = await bazel7(sid.root, scratch, workspace, outputRoot, 'test', [...flags, '//...']);
    assert.equal(second.status, 0, second.output);
    const hits = processSummary(second.output);
    assert.equal(hits.remote ?? 0, 0, second.output);
    assert.ok((hits['remote cache hit'] ?? 0) >= 8, second.output);
  });
});
