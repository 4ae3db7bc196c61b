import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { actionRequest, schedulerContract, successResponse } from '../../test/support/schedulerContract.js';
import { Code } from '../util/status.js';
import { EmbeddedScheduler, type EmbeddedSchedulerOptions } from './embeddedScheduler.js';
import type { OperationRecord } from './types.js';

const temporaryDirectories: string[] = [];
async function temporaryDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'granary-scheduler-'));
  temporaryDirectories.push(directory);
  return directory;
}
after(async () => {
  for (const directory of temporaryDirectories) await rm(directory, { recursive: true, force: true });
});

/** Polls until the condition holds, failing after timeoutMs. */
async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 1_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Silences console.error while fn runs (expected complaints about bad state files). */
async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const original = console.error;
  console.error = () => {};
  try {
    return await fn();
  } finally {
    console.error = original;
  }
}

schedulerContract('EmbeddedScheduler in memory', async () => {
  const scheduler = await EmbeddedScheduler.open({ maximumAttempts: 3 });
  return { scheduler, maximumAttempts: 3, cleanup: () => scheduler.close() };
});

schedulerContract('EmbeddedScheduler with a state file', async () => {
  const directory = await temporaryDirectory();
  const scheduler = await EmbeddedScheduler.open({ stateFile: join(directory, 'operations.json'), maximumAttempts: 3 });
  return {
    scheduler,
    maximumAttempts: 3,
    cleanup: async () => {
      await scheduler.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});

describe('EmbeddedScheduler', () => {
  const open: EmbeddedScheduler[] = [];
  async function openScheduler(options: EmbeddedSchedulerOptions = {}): Promise<EmbeddedScheduler> {
    const scheduler = await EmbeddedScheduler.open(options);
    open.push(scheduler);
    return scheduler;
  }
  afterEach(async () => {
    for (const scheduler of open.splice(0)) await scheduler.close();
  });

  describe('persistence', () => {
    it('survives a restart: results kept, running work requeued, queued work still queued and joinable', async () => {
      const stateFile = join(await temporaryDirectory(), 'state', 'operations.json');
      const first = await openScheduler({ stateFile });
      await first.heartbeat('w', []);
      const running = await first.submit(actionRequest('running'));
      const done = await first.submit(actionRequest('done'));
      const queued1 = await first.submit(actionRequest('queued1'));
      const queued2 = await first.submit(actionRequest('queued2'));
      const uncached = await first.submit(actionRequest('uncached', { doNotCache: true }));
      assert.deepEqual(
        (await first.take('w', 2)).map((a) => a.operationName),
        [running.name, done.name],
      );
      await first.complete('w', done.name, successResponse(42));
      await first.close();

      const second = await openScheduler({ stateFile });
      assert.equal((await second.list()).length, 5);
      const reloadedDone = await second.get(done.name);
      assert.equal(reloadedDone?.stage, 'COMPLETED');
      assert.equal(reloadedDone?.response?.result?.exitCode, 42);
      assert.deepEqual(reloadedDone?.response?.result?.stdoutDigest, successResponse(42).result?.stdoutDigest);
      const reloadedRunning = await second.get(running.name);
      assert.equal(reloadedRunning?.stage, 'QUEUED', 'work that was running goes back to the queue');
      assert.equal(reloadedRunning?.workerId, undefined);
      assert.equal(reloadedRunning?.attempts, 1);
      for (const op of [queued1, queued2, uncached]) assert.equal((await second.get(op.name))?.stage, 'QUEUED');

      assert.equal(
        (await second.submit(actionRequest('running'))).name,
        running.name,
        'joins a reloaded requeued action',
      );
      assert.equal(
        (await second.submit(actionRequest('queued1'))).name,
        queued1.name,
        'joins a reloaded queued action',
      );
      assert.notEqual((await second.submit(actionRequest('done'))).name, done.name, 'a completed one is not joined');
      assert.notEqual((await second.submit(actionRequest('uncached', { doNotCache: true }))).name, uncached.name);

      const stages: string[] = [];
      await second.watch(queued2.name, (r) => stages.push(r.stage));
      await second.heartbeat('w2', []);
      const taken = (await second.take('w2', 10)).map((a) => a.operationName);
      assert.ok(taken.includes(queued2.name) && taken.includes(running.name));
      assert.ok(taken.indexOf(queued1.name) < taken.indexOf(queued2.name), 'the queue keeps its order');
      assert.deepEqual(stages, ['QUEUED', 'EXECUTING']);
    });

    it('starts empty from a truncated state file and keeps the unreadable file aside', async () => {
      const directory = await temporaryDirectory();
      const stateFile = join(directory, 'operations.json');
      const first = await openScheduler({ stateFile });
      await first.submit(actionRequest(1));
      await first.close();
      const text = await readFile(stateFile, 'utf8');
      await writeFile(stateFile, text.slice(0, Math.floor(text.length / 2)));

      const second = await quietly(() => openScheduler({ stateFile }));
      assert.deepEqual(await second.list(), []);
      assert.equal(
        await readFile(join(directory, 'operations.json.unreadable'), 'utf8'),
        text.slice(0, Math.floor(text.length / 2)),
      );
      const op = await second.submit(actionRequest(2));
      await second.close();
      const third = await openScheduler({ stateFile });
      assert.deepEqual(
        (await third.list()).map((o) => o.name),
        [op.name],
        'the next save replaces the unreadable file',
      );
    });

    for (const [what, content] of [
      ['garbage', 'not json at all \u0000'],
      ['JSON null', 'null'],
      ['a list where an object is expected', '[1, 2, 3]'],
      ['operations that are not a list', '{"version":1,"operations":{"a":1}}'],
      ['an operation without a request', '{"version":1,"operations":[{"name":"operations/x","stage":"QUEUED"}]}'],
      [
        'an undecodable response',
        '{"version":1,"operations":[{"name":"operations/x","stage":"COMPLETED","request":{"actionDigest":{"hash":"ab","sizeBytes":1}},"response":"/////w=="}]}',
      ],
    ]) {
      it(`starts empty from a state file holding ${what}`, async () => {
        const stateFile = join(await temporaryDirectory(), 'operations.json');
        await writeFile(stateFile, content as string);
        const scheduler = await quietly(() => openScheduler({ stateFile }));
        assert.deepEqual(await scheduler.list(), []);
        const op = await scheduler.submit(actionRequest(1));
        assert.equal(op.stage, 'QUEUED');
      });
    }

    it('ignores a temporary file left by a save interrupted before its rename', async () => {
      const directory = await temporaryDirectory();
      const stateFile = join(directory, 'operations.json');
      const first = await openScheduler({ stateFile });
      const op = await first.submit(actionRequest(1));
      await first.close();
      await writeFile(`${stateFile}.0000.tmp`, '{"version":1,"operations":[{"na');
      const second = await openScheduler({ stateFile });
      assert.deepEqual(
        (await second.list()).map((o) => o.name),
        [op.name],
      );
    });

    it('never lets a reader see a half-written state file and leaves no temporary files', async () => {
      const directory = await temporaryDirectory();
      const stateFile = join(directory, 'operations.json');
      const scheduler = await openScheduler({ stateFile });
      await scheduler.heartbeat('w', []);
      await scheduler.submit(actionRequest('seed'));
      await scheduler.close();
      const busy = await openScheduler({ stateFile });
      await busy.heartbeat('w', []);
      let writing = true;
      const writer = (async () => {
        for (let i = 0; i < 40; i++) {
          // Large-ish records so a non-atomic write would be visible part way.
          await busy.submit(actionRequest(i, { clientKey: 'x'.repeat(2_000) }));
          await (busy as unknown as { save(): Promise<void> }).save();
        }
        writing = false;
      })();
      let reads = 0;
      while (writing) {
        const text = await readFile(stateFile, 'utf8');
        assert.doesNotThrow(() => JSON.parse(text), 'the state file always parses');
        reads++;
      }
      await writer;
      await busy.close();
      assert.ok(reads > 0);
      assert.deepEqual(await readdir(directory), ['operations.json']);
      const reopened = await openScheduler({ stateFile });
      assert.equal((await reopened.list()).length, 41);
    });

    it('keeps saving after a save failed', async () => {
      const directory = await temporaryDirectory();
      const blocker = join(directory, 'blocker');
      await writeFile(blocker, 'a file where the state directory should be');
      const stateFile = join(blocker, 'operations.json');
      const scheduler = await EmbeddedScheduler.open({ stateFile });
      const op = await scheduler.submit(actionRequest(1));
      await assert.rejects(scheduler.close(), 'the state cannot be written while the directory is blocked');
      await rm(blocker);
      await scheduler.close();
      const reopened = await openScheduler({ stateFile });
      assert.deepEqual(
        (await reopened.list()).map((o) => o.name),
        [op.name],
      );
    });

    it('writes nothing after close, even when a change was waiting to be saved', async () => {
      const directory = await temporaryDirectory();
      const stateFile = join(directory, 'state', 'operations.json');
      const scheduler = await EmbeddedScheduler.open({ stateFile });
      const op = await scheduler.submit(actionRequest('a'));
      await scheduler.close();
      const saved = await readFile(stateFile, 'utf8');
      assert.ok(saved.includes(op.name), 'close saves the state');
      await rm(join(directory, 'state'), { recursive: true });
      // Past the save delay of the last change.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(await readdir(directory), [], 'a late save would recreate the file');
    });
  });

  describe('workers', () => {
    it('requeues the work of a worker silent for longer than workerTimeoutMs, but not of a live one', async () => {
      let now = 1_000_000;
      const scheduler = await openScheduler({ workerTimeoutMs: 100, now: () => now });
      await scheduler.heartbeat('quiet', []);
      await scheduler.heartbeat('chatty', []);
      const lost = await scheduler.submit(actionRequest(1));
      const kept = await scheduler.submit(actionRequest(2));
      await scheduler.take('quiet', 1);
      await scheduler.take('chatty', 1);
      now += 90;
      await new Promise((resolve) => setTimeout(resolve, 120));
      assert.equal((await scheduler.get(lost.name))?.stage, 'EXECUTING', 'not yet past the timeout');
      now += 60;
      await scheduler.heartbeat('chatty', []);
      await until(async () => (await scheduler.get(lost.name))?.stage === 'QUEUED');
      assert.equal((await scheduler.get(kept.name))?.stage, 'EXECUTING');
      assert.equal(await scheduler.shouldAbandon('quiet', lost.name), true);
      assert.equal(await scheduler.couldRun([]), true);
    });

    it('forgets an expired worker after workerMemoryMs and then fails actions only it could run', async () => {
      let now = 1_000_000;
      const scheduler = await openScheduler({
        workerTimeoutMs: 100,
        workerMemoryMs: 1_000,
        startupGraceMs: 500,
        now: () => now,
      });
      await scheduler.heartbeat('gpu', [{ name: 'gpu', value: 'yes' }]);
      now += 600;
      assert.equal(await scheduler.couldRun([{ name: 'gpu', value: 'yes' }]), true, 'a recently seen worker counts');
      now += 600;
      await until(async () => !(await scheduler.couldRun([{ name: 'gpu', value: 'yes' }])));
    });

    it('lets actions wait during the start-up grace period before any worker connected', async () => {
      let now = 1_000_000;
      const scheduler = await openScheduler({ startupGraceMs: 1_000, now: () => now });
      assert.equal(await scheduler.couldRun([{ name: 'OSFamily', value: 'linux' }]), true);
      now += 1_001;
      assert.equal(await scheduler.couldRun([{ name: 'OSFamily', value: 'linux' }]), false);
    });

    it('wakes waiting workers when an executing operation is cancelled, so its worker hears at once', async () => {
      const scheduler = await openScheduler();
      await scheduler.heartbeat('w', []);
      const op = await scheduler.submit(actionRequest(1));
      await scheduler.take('w', 1);
      const started = Date.now();
      const waiting = scheduler.waitForWork(5_000);
      setTimeout(() => void scheduler.cancel(op.name), 20);
      await waiting;
      assert.ok(Date.now() - started < 1_000);
      assert.equal(await scheduler.shouldAbandon('w', op.name), true);
    });
  });

  describe('completion', () => {
    it('fills the action cache before watchers see COMPLETED, and identical submissions join meanwhile', async () => {
      const seenByWatcher: string[] = [];
      let joined: OperationRecord | undefined;
      let scheduler!: EmbeddedScheduler;
      scheduler = await openScheduler({
        onCompleted: async (operation) => {
          assert.equal(operation.stage, 'COMPLETED');
          assert.equal(operation.response?.result?.exitCode, 0);
          assert.ok(!seenByWatcher.includes('COMPLETED'), 'recorded before anyone is told');
          joined = await scheduler.submit(actionRequest(1, { clientKey: 'late' }));
        },
      });
      await scheduler.heartbeat('w', []);
      const op = await scheduler.submit(actionRequest(1));
      await scheduler.watch(op.name, (r) => seenByWatcher.push(r.stage));
      await scheduler.take('w', 1);
      await scheduler.complete('w', op.name, successResponse());
      assert.equal(joined?.name, op.name);
      assert.deepEqual(seenByWatcher, ['QUEUED', 'EXECUTING', 'COMPLETED']);
    });

    it('completes the operation even when recording the result fails', async () => {
      const scheduler = await openScheduler({
        onCompleted: async () => {
          throw new Error('action cache unavailable');
        },
      });
      await scheduler.heartbeat('w', []);
      const op = await scheduler.submit(actionRequest(1));
      await scheduler.take('w', 1);
      await quietly(() => scheduler.complete('w', op.name, successResponse(3)));
      assert.equal((await scheduler.get(op.name))?.response?.result?.exitCode, 3);
    });

    it('keeps a cancellation that arrives while the result is being recorded', async () => {
      let release!: () => void;
      const recording = new Promise<void>((resolve) => {
        release = resolve;
      });
      const scheduler = await openScheduler({ onCompleted: () => recording });
      await scheduler.heartbeat('w', []);
      const op = await scheduler.submit(actionRequest(1));
      await scheduler.take('w', 1);
      const completing = scheduler.complete('w', op.name, successResponse());
      await scheduler.cancel(op.name);
      release();
      await completing;
      assert.equal((await scheduler.get(op.name))?.response?.status?.code, Code.CANCELLED);
    });

    it('forgets completed operations after completedRetentionMs unless someone watches them', async () => {
      let now = 1_000_000;
      const scheduler = await openScheduler({ workerTimeoutMs: 100, completedRetentionMs: 1_000, now: () => now });
      const watched = await scheduler.recordCompleted(actionRequest(1), successResponse());
      const unwatched = await scheduler.recordCompleted(actionRequest(2), successResponse());
      const queued = await scheduler.submit(actionRequest(3));
      const stop = await scheduler.watch(watched.name, () => {});
      now += 1_001;
      await until(async () => (await scheduler.get(unwatched.name)) === undefined);
      assert.ok(await scheduler.get(watched.name));
      assert.ok(await scheduler.get(queued.name), 'unfinished work is never forgotten');
      stop();
      await until(async () => (await scheduler.get(watched.name)) === undefined);
    });
  });

  describe('fairness', () => {
    it('does not count action cache hits against a client’s share of the workers', async () => {
      const scheduler = await openScheduler();
      await scheduler.heartbeat('w', []);
      for (let i = 0; i < 50; i++)
        await scheduler.recordCompleted(actionRequest(`hit${i}`, { clientKey: 'A' }), successResponse());
      for (let i = 0; i < 5; i++) await scheduler.submit(actionRequest(`b${i}`, { clientKey: 'B' }));
      const a = await scheduler.submit(actionRequest('a', { clientKey: 'A' }));
      const firstTwo = [...(await scheduler.take('w', 1)), ...(await scheduler.take('w', 1))].map(
        (x) => x.operationName,
      );
      assert.ok(firstTwo.includes(a.name), 'A is served among the first two');
    });

    it('lets a client that arrives later take turns with one that queued a lot', async () => {
      const scheduler = await openScheduler();
      await scheduler.heartbeat('w', []);
      for (let i = 0; i < 20; i++) await scheduler.submit(actionRequest(`a${i}`, { clientKey: 'A' }));
      // A's first few are served before B shows up.
      await scheduler.take('w', 5);
      for (let i = 0; i < 3; i++) await scheduler.submit(actionRequest(`b${i}`, { clientKey: 'B' }));
      const next = (await scheduler.take('w', 6)).map((x) => x.request.clientKey);
      assert.deepEqual(next, ['A', 'B', 'A', 'B', 'A', 'B']);
    });
  });
});
