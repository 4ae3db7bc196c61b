/**
 * The scheduler contract against every operation store, and the scheduler's own
 * rules: silent workers lose their leases, workers are remembered a while, old
 * results are forgotten unless watched, clients share the farm fairly, and a
 * watcher never hears old news.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { actionRequest, schedulerContract, successResponse } from '../../test/support/schedulerContract.js';
import { until } from '../../test/support/waiting.js';
import { backgroundContext } from '../context/requestContext.js';
import { Code, StatusError } from '../util/status.js';
import { MemoryOperationStore } from './memoryOperationStore.js';
import { InProcessNotifier, type Notifier, type OperationChange } from './notifier.js';
import { openScheduler as open, type SchedulerSettings } from './openScheduler.js';
import { OperationScheduler } from './operationScheduler.js';
import { SchedulingPolicy } from './schedulingPolicy.js';

const ctx = backgroundContext();

schedulerContract('OperationScheduler over the memory store', async () => {
  const scheduler = await open({ maximumAttempts: 3 });
  return { scheduler, maximumAttempts: 3, cleanup: () => scheduler.close() };
});

schedulerContract('OperationScheduler over the file store', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'granary-scheduler-'));
  const scheduler = await open({ stateFile: join(directory, 'operations.json'), maximumAttempts: 3 });
  return {
    scheduler,
    maximumAttempts: 3,
    cleanup: async () => {
      await scheduler.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});

describe('OperationScheduler', () => {
  const opened: OperationScheduler[] = [];
  async function openScheduler(settings: SchedulerSettings = {}): Promise<OperationScheduler> {
    const scheduler = await open(settings);
    opened.push(scheduler);
    return scheduler;
  }
  afterEach(async () => {
    for (const scheduler of opened.splice(0)) await scheduler.close();
  });

  describe('workers', () => {
    it('requeues the work of a worker silent for longer than workerTimeoutMs, but not of a live one', async () => {
      let now = 1_000_000;
      const scheduler = await openScheduler({ workerTimeoutMs: 100, now: () => now });
      await scheduler.heartbeat(ctx, 'quiet', []);
      await scheduler.heartbeat(ctx, 'chatty', []);
      const lost = await scheduler.submit(ctx, actionRequest(1));
      const kept = await scheduler.submit(ctx, actionRequest(2));
      await scheduler.take(ctx, 'quiet', 1);
      await scheduler.take(ctx, 'chatty', 1);
      now += 90;
      await new Promise((resolve) => setTimeout(resolve, 120));
      assert.equal((await scheduler.get(ctx, lost.name))?.stage, 'EXECUTING', 'not yet past the timeout');
      now += 60;
      await scheduler.heartbeat(ctx, 'chatty', []);
      await until(async () => (await scheduler.get(ctx, lost.name))?.stage === 'QUEUED');
      assert.equal((await scheduler.get(ctx, kept.name))?.stage, 'EXECUTING');
      assert.equal(await scheduler.shouldAbandon(ctx, 'quiet', lost.name), true);
      assert.equal(await scheduler.couldRun(ctx, []), true);
    });

    it('forgets an expired worker after workerMemoryMs and then fails actions only it could run', async () => {
      let now = 1_000_000;
      const scheduler = await openScheduler({
        workerTimeoutMs: 100,
        workerMemoryMs: 1_000,
        startupGraceMs: 500,
        now: () => now,
      });
      await scheduler.heartbeat(ctx, 'gpu', [{ name: 'gpu', value: 'yes' }]);
      now += 600;
      assert.equal(
        await scheduler.couldRun(ctx, [{ name: 'gpu', value: 'yes' }]),
        true,
        'a recently seen worker counts',
      );
      now += 600;
      await until(async () => !(await scheduler.couldRun(ctx, [{ name: 'gpu', value: 'yes' }])));
    });

    it('fails queued actions only a vanished worker could run once the reconnect grace has passed, saying why', async () => {
      let now = 1_000_000;
      const completed: string[] = [];
      const scheduler = await openScheduler({
        workerTimeoutMs: 100,
        reconnectGraceMs: 1_000,
        now: () => now,
        onCompleted: (operation) => completed.push(operation.name),
      });
      await scheduler.heartbeat(ctx, 'session-1', [{ name: 'pool', value: 'gpu' }], { botId: 'gpu-box' });
      const op = await scheduler.submit(ctx, actionRequest(1, { platform: [{ name: 'pool', value: 'gpu' }] }));
      const other = await scheduler.submit(ctx, actionRequest(2));
      await scheduler.removeWorker(ctx, 'session-1');
      now += 500;
      assert.equal(await scheduler.couldRun(ctx, [{ name: 'pool', value: 'gpu' }]), true, 'it may still come back');
      await new Promise((resolve) => setTimeout(resolve, 80));
      assert.equal((await scheduler.get(ctx, op.name))?.stage, 'QUEUED');
      now += 600;
      await until(async () => (await scheduler.get(ctx, op.name))?.stage === 'COMPLETED');
      const status = (await scheduler.get(ctx, op.name))?.response?.status;
      assert.equal(status?.code, Code.FAILED_PRECONDITION);
      assert.match(status?.message ?? '', /no worker can run .*pool=gpu.*gpu-box\) left 1 s ago/);
      assert.equal(completed.filter((name) => name === op.name).length, 1, 'the observer hears of it once');
      assert.equal(
        (await scheduler.get(ctx, other.name))?.stage,
        'COMPLETED',
        'an action any worker could run fails too once no worker at all is left',
      );
    });

    it('lets actions wait during the start-up grace period before any worker connected', async () => {
      let now = 1_000_000;
      const scheduler = await openScheduler({ startupGraceMs: 1_000, now: () => now });
      assert.equal(await scheduler.couldRun(ctx, [{ name: 'OSFamily', value: 'linux' }]), true);
      now += 1_001;
      assert.equal(await scheduler.couldRun(ctx, [{ name: 'OSFamily', value: 'linux' }]), false);
    });

    it('wakes waiting workers when an executing operation is cancelled, so its worker hears at once', async () => {
      const scheduler = await openScheduler();
      await scheduler.heartbeat(ctx, 'w', []);
      const op = await scheduler.submit(ctx, actionRequest(1));
      await scheduler.take(ctx, 'w', 1);
      const started = Date.now();
      const waiting = scheduler.waitForWork(ctx, 5_000);
      setTimeout(() => void scheduler.cancel(ctx, op.name), 20);
      await waiting;
      assert.ok(Date.now() - started < 1_000);
      assert.equal(await scheduler.shouldAbandon(ctx, 'w', op.name), true);
    });
  });

  describe('completed operations', () => {
    it('forgets completed operations after completedRetentionMs unless someone watches them', async () => {
      let now = 1_000_000;
      const scheduler = await openScheduler({ workerTimeoutMs: 100, completedRetentionMs: 1_000, now: () => now });
      const watched = await scheduler.recordCompleted(ctx, actionRequest(1), successResponse());
      const unwatched = await scheduler.recordCompleted(ctx, actionRequest(2), successResponse());
      const queued = await scheduler.submit(ctx, actionRequest(3));
      const stop = await scheduler.watch(ctx, watched.name, () => {});
      now += 1_001;
      await until(async () => (await scheduler.get(ctx, unwatched.name)) === undefined);
      assert.ok(await scheduler.get(ctx, watched.name));
      assert.ok(await scheduler.get(ctx, queued.name), 'unfinished work is never forgotten');
      stop();
      await until(async () => (await scheduler.get(ctx, watched.name)) === undefined);
    });
  });

  describe('fairness', () => {
    it('does not count action cache hits against a client’s share of the workers', async () => {
      const scheduler = await openScheduler();
      await scheduler.heartbeat(ctx, 'w', []);
      for (let i = 0; i < 50; i++)
        await scheduler.recordCompleted(ctx, actionRequest(`hit${i}`, { clientKey: 'A' }), successResponse());
      for (let i = 0; i < 5; i++) await scheduler.submit(ctx, actionRequest(`b${i}`, { clientKey: 'B' }));
      const a = await scheduler.submit(ctx, actionRequest('a', { clientKey: 'A' }));
      const firstTwo = [...(await scheduler.take(ctx, 'w', 1)), ...(await scheduler.take(ctx, 'w', 1))].map(
        (x) => x.operationName,
      );
      assert.ok(firstTwo.includes(a.name), 'A is served among the first two');
    });

    it('lets a client that arrives later take turns with one that queued a lot', async () => {
      const scheduler = await openScheduler();
      await scheduler.heartbeat(ctx, 'w', []);
      for (let i = 0; i < 20; i++) await scheduler.submit(ctx, actionRequest(`a${i}`, { clientKey: 'A' }));
      // A's first few are served before B shows up.
      await scheduler.take(ctx, 'w', 5);
      for (let i = 0; i < 3; i++) await scheduler.submit(ctx, actionRequest(`b${i}`, { clientKey: 'B' }));
      const next = (await scheduler.take(ctx, 'w', 6)).map((x) => x.request.clientKey);
      assert.deepEqual(next, ['A', 'B', 'A', 'B', 'A', 'B']);
    });
  });

  describe('configured platform matching', () => {
    const p = (name: string, value: string) => ({ name, value });

    it('hands a minimum property to workers offering at least that much, and refuses a non-number', async () => {
      const scheduler = await openScheduler({ platformMatch: { cores: 'minimum' } });
      await scheduler.heartbeat(ctx, 'small', [p('cores', '2')]);
      await scheduler.heartbeat(ctx, 'big', [p('cores', '16')]);
      assert.equal(await scheduler.couldRun(ctx, [p('cores', '8')]), true);
      assert.equal(await scheduler.couldRun(ctx, [p('cores', '32')]), false);
      await assert.rejects(scheduler.couldRun(ctx, [p('cores', 'eight')]), (error: unknown) => {
        assert.ok(error instanceof StatusError);
        assert.equal(error.code, Code.INVALID_ARGUMENT);
        return true;
      });
      const op = await scheduler.submit(ctx, actionRequest(1, { platform: [p('cores', '8')] }));
      assert.deepEqual(await scheduler.take(ctx, 'small', 1), []);
      assert.deepEqual(
        (await scheduler.take(ctx, 'big', 1)).map((a) => a.operationName),
        [op.name],
      );
    });

    it('hands a worker first the actions whose priority property it offers, and the rest after', async () => {
      const scheduler = await openScheduler({ platformMatch: { pool: 'priority' } });
      await scheduler.heartbeat(ctx, 'fast', [p('pool', 'fast')]);
      const anywhere = await scheduler.submit(ctx, actionRequest(1, { platform: [p('pool', 'slow')] }));
      const preferred = await scheduler.submit(ctx, actionRequest(2, { platform: [p('pool', 'fast')] }));
      assert.deepEqual(
        (await scheduler.take(ctx, 'fast', 2)).map((a) => a.operationName),
        [preferred.name, anywhere.name],
      );
    });
  });

  describe('watching', () => {
    /** A notifier that also delivers every change a second time, late and without the record (as a database would). */
    class EchoingNotifier extends InProcessNotifier implements Notifier {
      override publishOperation(change: OperationChange): void {
        super.publishOperation(change);
        setTimeout(() => super.publishOperation({ name: change.name, version: change.version }), 5);
      }
    }

    it('never reports a change twice or out of order, even when news comes late and repeated', async () => {
      const policy = new SchedulingPolicy();
      const scheduler = new OperationScheduler({
        store: new MemoryOperationStore(policy),
        notifier: new EchoingNotifier(),
        policy,
      });
      opened.push(scheduler);
      await scheduler.heartbeat(ctx, 'w', []);
      const op = await scheduler.submit(ctx, actionRequest(1));
      const seen: string[] = [];
      await scheduler.watch(ctx, op.name, (r) => seen.push(r.stage));
      await scheduler.take(ctx, 'w', 1);
      await scheduler.complete(ctx, 'w', op.name, successResponse());
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(seen, ['QUEUED', 'EXECUTING', 'COMPLETED']);
    });

    it('reports a change made while the watch was starting exactly once', async () => {
      const scheduler = await openScheduler();
      await scheduler.heartbeat(ctx, 'w', []);
      const op = await scheduler.submit(ctx, actionRequest(1));
      const seen: string[] = [];
      const watching = scheduler.watch(ctx, op.name, (r) => seen.push(r.stage));
      await scheduler.take(ctx, 'w', 1);
      const stop = await watching;
      await scheduler.complete(ctx, 'w', op.name, successResponse());
      stop();
      assert.equal(seen.at(-1), 'COMPLETED');
      assert.equal(new Set(seen).size, seen.length, `no stage twice: ${seen.join(', ')}`);
    });
  });
});
