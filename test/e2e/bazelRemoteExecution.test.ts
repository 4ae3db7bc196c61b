/**
 * Bazel 4.2.3 with --remote_executor against a real `granary serve` and real
 * `granary worker` processes: everything builds and tests remotely with no local
 * fallback, rebuilds are cache hits, platform properties route actions to the
 * right pool, a worker killed mid-action does not fail the build, and the embedded
 * worker links its plain inputs from the farm's CAS instead of keeping copies.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  bazel,
  bazelAsync,
  execPropertyFlags,
  processSummary,
  remoteExecutionFlags,
  spawnsOtherThan,
} from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { requireCommand, run } from '../support/commands.js';
import { useFarm } from '../support/farm.js';

const skip = requireCommand('bazel');

/** The blob files of a disk store's directory. */
const blobFilesIn = (directory: string) =>
  readdirSync(join(directory, 'blobs'), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => entry.name);

/** What ran other than remotely (or from the remote cache): anything here ran on the client. */
const executedKinds = (output: string) => spawnsOtherThan(processSummary(output), ['remote', 'remote cache hit']);

describe('Bazel 4.2.3 with --remote_executor on the embedded farm', { skip, timeout: 15 * 60_000 }, () => {
  const farm = useFarm({ name: 'bazel-exec', embeddedWorkers: 2 });

  test('builds and tests every target remotely, then rebuilds from the cache after clean --expunge', () => {
    const workspace = bazelWorkspace(4, farm.scratch);
    const outputRoot = farm.path('root');
    const first = bazel(workspace, outputRoot, 'test', [...remoteExecutionFlags(farm.url), '//...']);
    assert.equal(first.status, 0, first.output);
    assert.deepEqual(executedKinds(first.output), [], `only remote execution is allowed: ${first.output}`);
    assert.ok((processSummary(first.output).remote ?? 0) >= 9, first.output);
    assert.equal(run(join(workspace, 'bazel-bin', 'hello'), [], workspace).trim(), 'Hello, Granary!');
    assert.equal(readFileSync(join(workspace, 'bazel-bin', 'tree', 'sub', 'b.txt'), 'utf8').trim(), 'beta');
    // The embedded worker linked the plain inputs the CAS keeps as files: it kept no copy of its own.
    const casFiles = new Set(blobFilesIn(farm.path('data', 'cas')));
    const copies = blobFilesIn(farm.path('data', 'worker', 'cache', 'plain')).filter((name) => casFiles.has(name));
    assert.deepEqual(copies, []);

    assert.equal(bazel(workspace, outputRoot, 'clean', ['--expunge']).status, 0);
    const second = bazel(workspace, outputRoot, 'test', [...remoteExecutionFlags(farm.url), '//...']);
    assert.equal(second.status, 0, second.output);
    const summary = processSummary(second.output);
    assert.equal(summary.remote ?? 0, 0, `nothing should run again: ${second.output}`);
    assert.ok((summary['remote cache hit'] ?? 0) >= 9, second.output);
  });

  test('actions asking for OSFamily=Linux and ISA=amd64, as users write them, run on the embedded worker', () => {
    const workspace = bazelWorkspace(4, farm.path('ws-osfamily'));
    // The embedded worker offers OSFamily=linux and its ISA in the lexicon's spelling (x86-64 on this host).
    const isa = process.arch === 'x64' ? execPropertyFlags('ISA=amd64') : [];
    const result = bazel(workspace, farm.path('root-osfamily'), 'build', [
      ...remoteExecutionFlags(farm.url),
      ...execPropertyFlags('OSFamily=Linux'),
      ...isa,
      '//:hello',
      '//farm:where',
    ]);
    assert.equal(result.status, 0, result.output);
    assert.deepEqual(executedKinds(result.output), [], `only remote execution is allowed: ${result.output}`);
    assert.ok((processSummary(result.output).remote ?? 0) >= 3, result.output);
    assert.equal(run(join(workspace, 'bazel-bin', 'hello'), [], workspace).trim(), 'Hello, Granary!');
    assert.match(readFileSync(join(workspace, 'bazel-bin', 'farm', 'where.txt'), 'utf8'), /\S/);
  });
});

describe('Bazel 4.2.3 with standalone workers in two pools', { skip, timeout: 15 * 60_000 }, () => {
  const farm = useFarm({
    name: 'bazel-pools',
    embeddedWorkers: 0,
    serveFlags: ['--worker-timeout', '3s'],
    workers: [
      { name: 'worker-a', platform: ['pool=a'] },
      { name: 'worker-b', platform: ['pool=b'] },
    ],
  });

  test('an action that asks for a pool runs only on a worker of that pool', () => {
    const workspace = bazelWorkspace(4, farm.path('ws-pool'));
    for (const pool of ['a', 'b']) {
      const outputRoot = farm.path(`root-${pool}`);
      const result = bazel(workspace, outputRoot, 'build', [
        ...remoteExecutionFlags(farm.url),
        ...execPropertyFlags(`pool=${pool}`),
        '//farm:where',
      ]);
      assert.equal(result.status, 0, result.output);
      const where = readFileSync(join(workspace, 'bazel-bin', 'farm', 'where.txt'), 'utf8');
      assert.match(where, new RegExp(`worker-${pool}`), `pool ${pool} action ran in ${where}`);
    }
    const nowhere = bazel(workspace, farm.path('root-c'), 'build', [
      ...remoteExecutionFlags(farm.url),
      ...execPropertyFlags('pool=c'),
      '//farm:where',
    ]);
    assert.notEqual(nowhere.status, 0, 'no worker offers pool=c: the build must fail fast');
    assert.match(nowhere.output, /FAILED_PRECONDITION|no worker can run/);
  });

  test('killing the worker in the middle of a long action still ends in a successful build', async () => {
    await farm.startWorker({ name: 'worker-a2', platform: ['pool=a'] });
    const workers = farm.workers;
    const workspace = bazelWorkspace(4, farm.path('ws-kill'));
    const seen = workers.map((w) => w.output().length);
    const building = bazelAsync(workspace, farm.path('root-kill'), 'build', [
      ...remoteExecutionFlags(farm.url),
      ...execPropertyFlags('pool=a'),
      '//farm:slow',
    ]);
    // Kill whichever worker picked the action up, once it is running.
    const deadline = Date.now() + 60_000;
    let killed = false;
    while (!killed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      for (const [i, worker] of workers.entries()) {
        if (worker.output().slice(seen[i]).includes('executing') && worker.process.exitCode === null) {
          worker.process.kill('SIGKILL');
          killed = true;
          break;
        }
      }
    }
    assert.ok(killed, 'a worker should have started the slow action');
    const result = await building;
    assert.equal(result.status, 0, result.output);
    assert.match(readFileSync(join(workspace, 'bazel-bin', 'farm', 'slow_out.txt'), 'utf8'), /slow action input/);
  });
});
