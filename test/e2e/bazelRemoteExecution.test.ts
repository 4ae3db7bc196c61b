/**
 * Bazel 4.2.3 with --remote_executor against a real `granary serve` and real
 * `granary worker` processes: everything builds and tests remotely with no local
 * fallback, rebuilds are cache hits, platform properties route actions to the
 * right pool, and a worker killed mid-action does not fail the build.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  bazel,
  bazelAsync,
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
const remote = (url: string) => [`--remote_executor=${url}`, '--spawn_strategy=remote', '--remote_timeout=120'];

function executedKinds(output: string): string[] {
  return Object.keys(processSummary(output)).filter(
    (k) => !['total', 'internal', 'remote', 'remote cache hit'].includes(k),
  );
}

describe('Bazel 4.2.3 with --remote_executor on the embedded farm', { skip, timeout: 15 * 60_000 }, () => {
  let scratch: string;
  let server: GranaryProcess;

  before(async () => {
    scratch = scratchDirectory('bazel-exec');
    server = await startGranary([
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--data',
      join(scratch, 'data'),
      '--workers',
      '2',
    ]);
  });

  after(async () => {
    await server?.stop();
    removeQuietly(scratch);
  });

  test('builds and tests every target remotely, then rebuilds from the cache after clean --expunge', () => {
    const workspace = copyFixture('cc-workspace', scratch);
    const outputRoot = join(scratch, 'root');
    const first = bazel(workspace, outputRoot, 'test', [...remote(server.url), '//...']);
    assert.equal(first.status, 0, first.output);
    assert.deepEqual(executedKinds(first.output), [], `only remote execution is allowed: ${first.output}`);
    assert.ok((processSummary(first.output).remote ?? 0) >= 9, first.output);
    assert.equal(run(join(workspace, 'bazel-bin', 'hello'), [], workspace).trim(), 'Hello, Granary!');
    assert.equal(readFileSync(join(workspace, 'bazel-bin', 'tree', 'sub', 'b.txt'), 'utf8').trim(), 'beta');

    assert.equal(bazel(workspace, outputRoot, 'clean', ['--expunge']).status, 0);
    const second = bazel(workspace, outputRoot, 'test', [...remote(server.url), '//...']);
    assert.equal(second.status, 0, second.output);
    const summary = processSummary(second.output);
    assert.equal(summary.remote ?? 0, 0, `nothing should run again: ${second.output}`);
    assert.ok((summary['remote cache hit'] ?? 0) >= 9, second.output);
  });

  test('actions asking for OSFamily=Linux and ISA=amd64, as users write them, run on the embedded worker', () => {
    const workspace = copyFixture('cc-workspace', join(scratch, 'ws-osfamily'));
    // The embedded worker offers OSFamily=linux and its ISA in the lexicon's spelling (x86-64 on this host).
    const isa = process.arch === 'x64' ? ['--remote_default_exec_properties=ISA=amd64'] : [];
    const result = bazel(workspace, join(scratch, 'root-osfamily'), 'build', [
      ...remote(server.url),
      '--remote_default_exec_properties=OSFamily=Linux',
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
  let scratch: string;
  let server: GranaryProcess;
  const workers: GranaryProcess[] = [];

  const startWorker = async (name: string, pool: string) => {
    const worker = await startGranary(
      [
        'worker',
        '--server',
        server.url,
        '--slots',
        '1',
        '--platform',
        `pool=${pool}`,
        '--work-dir',
        join(scratch, name),
        '--bot-id',
        name,
      ],
      30_000,
      /connected as/,
    );
    workers.push(worker);
    return worker;
  };

  before(async () => {
    scratch = scratchDirectory('bazel-pools');
    server = await startGranary([
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--data',
      join(scratch, 'data'),
      '--workers',
      '0',
      '--worker-timeout',
      '3s',
    ]);
    await startWorker('worker-a', 'a');
    await startWorker('worker-b', 'b');
  });

  after(async () => {
    for (const worker of workers) await worker.stop();
    await server?.stop();
    removeQuietly(scratch);
  });

  test('an action that asks for a pool runs only on a worker of that pool', () => {
    const workspace = copyFixture('cc-workspace', join(scratch, 'ws-pool'));
    for (const pool of ['a', 'b']) {
      const outputRoot = join(scratch, `root-${pool}`);
      const result = bazel(workspace, outputRoot, 'build', [
        ...remote(server.url),
        `--remote_default_exec_properties=pool=${pool}`,
        '//farm:where',
      ]);
      assert.equal(result.status, 0, result.output);
      const where = readFileSync(join(workspace, 'bazel-bin', 'farm', 'where.txt'), 'utf8');
      assert.match(where, new RegExp(`worker-${pool}`), `pool ${pool} action ran in ${where}`);
    }
    const nowhere = bazel(workspace, join(scratch, 'root-c'), 'build', [
      ...remote(server.url),
      '--remote_default_exec_properties=pool=c',
      '//farm:where',
    ]);
    assert.notEqual(nowhere.status, 0, 'no worker offers pool=c: the build must fail fast');
    assert.match(nowhere.output, /FAILED_PRECONDITION|no worker can run/);
  });

  test('killing the worker in the middle of a long action still ends in a successful build', async () => {
    await startWorker('worker-a2', 'a');
    const workspace = copyFixture('cc-workspace', join(scratch, 'ws-kill'));
    const seen = workers.map((w) => w.output().length);
    const building = bazelAsync(workspace, join(scratch, 'root-kill'), 'build', [
      ...remote(server.url),
      '--remote_default_exec_properties=pool=a',
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
