/**
 * The scheduler contract against the PostgreSQL store on a real PostgreSQL, and what
 * only a shared database can show: several frontends (schedulers with their own
 * connections to one database) are one farm. Work queued through one is taken by a
 * worker of another, watchers on one hear of changes made through another, identical
 * actions are one across frontends, priority and fairness hold across them,
 * concurrent claims never hand one action to two workers, and any frontend expires
 * the leases of a worker whose frontend died.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useLocalPostgres } from '../../test/support/localPostgres.js';
import { actionRequest, schedulerContract, successResponse } from '../../test/support/schedulerContract.js';
import { until } from '../../test/support/waiting.js';
import { backgroundContext } from '../context/requestContext.js';
import { PostgresDatabase } from '../database/postgresDatabase.js';
import { openScheduler, type SchedulerSettings } from './openScheduler.js';
import { OperationScheduler } from './operationScheduler.js';
import { PostgresNotifier } from './postgresNotifier.js';
import { PostgresOperationStore } from './postgresOperationStore.js';
import { SchedulingPolicy } from './schedulingPolicy.js';
import type { OperationRecord } from './types.js';

const ctx = backgroundContext();
const { skip, server } = useLocalPostgres();

/** A frontend: its own connections to the database and its own scheduler over them. */
interface Frontend {
  database: PostgresDatabase;
  scheduler: OperationScheduler;
  close(): Promise<void>;
}

async function openFrontend(url: string, settings: SchedulerSettings = {}): Promise<Frontend> {
  const database = await PostgresDatabase.open({ url });
  const scheduler = await openScheduler({ ...settings, database });
  return {
    database,
    scheduler,
    close: async () => {
      await scheduler.close();
      await database.close();
    },
  };
}

if (skip) {
  describe('OperationScheduler over the PostgreSQL store', () => {
    it('runs against a real PostgreSQL', { skip }, () => {});
  });
} else {
  schedulerContract('OperationScheduler over the PostgreSQL store', async () => {
    const frontend = await openFrontend(await server().createSchema(), { maximumAttempts: 3 });
    return { scheduler: frontend.scheduler, maximumAttempts: 3, cleanup: () => frontend.close() };
  });
}

describe('several frontends on one PostgreSQL', { skip }, () => {
  /** Two frontends on a fresh database, closed after the test. */
  async function twoFrontends(
    t: { after(fn: () => Promise<void>): void },
    settings: SchedulerSettings = {},
  ): Promise<[OperationScheduler, OperationScheduler]> {
    const url = await server().createSchema();
    const a = await openFrontend(url, settings);
    const b = await openFrontend(url, settings);
    t.after(async () => {
      await a.close();
      await b.close();
    });
    return [a.scheduler, b.scheduler];
  }

  /**
   * Waits for `listener`'s notification connection, which a fresh frontend opens in
   * the background: until then changes made through `sender` reach it only as the
   * current state once it subscribes. Leaves probe actions queued.
   */
  async function untilListening(listener: OperationScheduler, sender: OperationScheduler): Promise<void> {
    await until(async () => {
      const waiting = listener.waitForWork(ctx, 200);
      await sender.submit(ctx, actionRequest(`probe ${Math.random()}`, { doNotCache: true }));
      const started = Date.now();
      await waiting;
      return Date.now() - started < 150;
    }, 10_000);
  }

  it('hands work queued through one frontend to a worker of another, and its watchers on the first hear every stage', async (t) => {
    const [a, b] = await twoFrontends(t);
    await b.heartbeat(ctx, 'worker-on-b', []);
    // Every stage reaches a's watcher only once a listens; then the probes are run out of the way.
    await untilListening(a, b);
    for (const probe of await b.take(ctx, 'worker-on-b', 1000)) {
      await b.complete(ctx, 'worker-on-b', probe.operationName, successResponse(0));
    }
    const op = await a.submit(ctx, actionRequest(1));
    const seen: string[] = [];
    await a.watch(ctx, op.name, (record) => seen.push(record.stage));
    assert.deepEqual(
      (await b.take(ctx, 'worker-on-b', 10)).map((assignment) => assignment.operationName),
      [op.name],
    );
    await b.complete(ctx, 'worker-on-b', op.name, successResponse(5));
    await until(() => seen.at(-1) === 'COMPLETED', 10_000);
    assert.deepEqual(seen, ['QUEUED', 'EXECUTING', 'COMPLETED']);
    const record = await a.get(ctx, op.name);
    assert.equal(record?.response?.result?.exitCode, 5, 'the name is valid on every frontend');
  });

  it('wakes a worker long-polling on one frontend when work is queued through another', async (t) => {
    const [a, b] = await twoFrontends(t);
    await untilListening(b, a);
    let submittedAtMs: number | undefined;
    let submission: Promise<unknown> = Promise.resolve();
    const woke = (async () => {
      // A late notification of a probe may wake it before the submission: wait again then.
      for (;;) {
        await b.waitForWork(ctx, 20_000);
        if (submittedAtMs !== undefined) return Date.now();
      }
    })();
    setTimeout(() => {
      submittedAtMs = Date.now();
      submission = a.submit(ctx, actionRequest('wake'));
    }, 50);
    const wokeAtMs = await woke;
    await submission;
    const delayMs = wokeAtMs - (submittedAtMs as number);
    assert.ok(delayMs < 10_000, `woke ${delayMs} ms after the submission, not at the timeout`);
  });

  it('joins identical actions submitted through different frontends, also when submitted at once', async (t) => {
    const [a, b] = await twoFrontends(t);
    const first = await a.submit(ctx, actionRequest(1, { clientKey: 'x' }));
    const second = await b.submit(ctx, actionRequest(1, { clientKey: 'y' }));
    assert.equal(second.name, first.name);
    const together = await Promise.all(
      Array.from({ length: 8 }, (_, index) => (index % 2 ? a : b).submit(ctx, actionRequest('together'))),
    );
    assert.equal(new Set(together.map((op) => op.name)).size, 1, 'one operation for eight concurrent submissions');
  });

  it('never hands one action to two workers when frontends claim at once', async (t) => {
    const [a, b] = await twoFrontends(t);
    const submitted: OperationRecord[] = [];
    for (let i = 0; i < 40; i++) submitted.push(await (i % 2 ? a : b).submit(ctx, actionRequest(i)));
    const workers = ['w1', 'w2', 'w3', 'w4'];
    for (const [index, worker] of workers.entries()) await (index % 2 ? a : b).heartbeat(ctx, worker, []);
    const taken = new Map<string, string>();
    await Promise.all(
      workers.map(async (worker, index) => {
        const frontend = index % 2 ? a : b;
        for (;;) {
          const assignments = await frontend.take(ctx, worker, 3);
          if (assignments.length === 0) return;
          for (const { operationName } of assignments) {
            assert.equal(taken.get(operationName), undefined, `${operationName} was handed out twice`);
            taken.set(operationName, worker);
          }
        }
      }),
    );
    assert.equal(taken.size, submitted.length, 'every action was handed out');
  });

  it('orders by priority and shares fairly across frontends', async (t) => {
    const [a, b] = await twoFrontends(t);
    await b.heartbeat(ctx, 'w', []);
    for (let i = 0; i < 6; i++) await a.submit(ctx, actionRequest(`a${i}`, { clientKey: 'A' }));
    const fromB = await b.submit(ctx, actionRequest('b0', { clientKey: 'B' }));
    const urgent = await a.submit(ctx, actionRequest('urgent', { clientKey: 'A', priority: -5 }));
    const order: string[] = [];
    for (let i = 0; i < 3; i++) order.push(...(await (i % 2 ? a : b).take(ctx, 'w', 1)).map((x) => x.operationName));
    assert.equal(order[0], urgent.name, 'the most urgent action goes first, whichever frontend queued it');
    assert.ok(order.includes(fromB.name), "B's only action is served among the first three, not after all of A's");
  });

  it('requeues the work of a worker whose frontend died, from any other frontend, after the worker timeout', async (t) => {
    const url = await server().createSchema();
    const dying = await openFrontend(url, { workerTimeoutMs: 60_000 });
    const survivor = await openFrontend(url, { workerTimeoutMs: 300 });
    t.after(() => survivor.close());
    await dying.scheduler.heartbeat(ctx, 'worker-of-dying', []);
    const op = await survivor.scheduler.submit(ctx, actionRequest(1));
    assert.equal((await dying.scheduler.take(ctx, 'worker-of-dying', 1)).length, 1);
    // The frontend dies: its worker's session is never heard of again.
    await dying.close();
    const seen: string[] = [];
    await survivor.scheduler.watch(ctx, op.name, (record) => seen.push(record.stage));
    await until(async () => (await survivor.scheduler.get(ctx, op.name))?.stage === 'QUEUED', 10_000);
    await survivor.scheduler.heartbeat(ctx, 'another-worker', []);
    const [retaken] = await survivor.scheduler.take(ctx, 'another-worker', 1);
    assert.equal(retaken?.operationName, op.name);
    assert.ok(
      ((await survivor.scheduler.get(ctx, op.name))?.attempts ?? 0) >= 2,
      'the lost lease counted as an attempt',
    );
    await until(() => seen.includes('QUEUED'), 10_000);
  });

  it('lets only one frontend at a time expire leases, and each lease is requeued once', async (t) => {
    const [a, b] = await twoFrontends(t, { workerTimeoutMs: 60_000 });
    await a.heartbeat(ctx, 'silent', []);
    const ops = [];
    for (let i = 0; i < 5; i++) ops.push(await a.submit(ctx, actionRequest(i)));
    await a.take(ctx, 'silent', 5);
    // Both frontends sweep at once (as their timers would), with the worker long silent.
    const stores = [a, b].map((s) => (s as unknown as { store: import('./operationStore.js').OperationStore }).store);
    const now = Date.now() + 120_000;
    const results = await Promise.all(stores.map((store) => store.expireLeases(ctx, now - 60_000, 0, now)));
    const requeued = results.flat();
    assert.equal(requeued.length, 5, 'each lease requeued exactly once');
    for (const op of ops) assert.equal((await b.get(ctx, op.name))?.attempts, 1);
  });

  it('tells a watcher of a change made while its frontend was not listening, once it listens again', async (t) => {
    const url = await server().createSchema();
    // Frontend A reconnects its notification connection only after a pause, in which B changes the operation.
    const databaseA = await PostgresDatabase.open({ url, applicationName: 'granary-frontend-a', log: () => {} });
    const policy = new SchedulingPolicy();
    const notifierA = new PostgresNotifier(databaseA, { reconnectDelayMs: 1500 });
    const a = new OperationScheduler({
      store: new PostgresOperationStore(databaseA, policy),
      notifier: notifierA,
      policy,
    });
    const b = await openFrontend(url);
    t.after(async () => {
      await a.close();
      await databaseA.close();
      await b.close();
    });
    const op = await b.scheduler.submit(ctx, actionRequest(1));
    const seen: string[] = [];
    await a.watch(ctx, op.name, (record) => seen.push(record.stage));
    await until(() => notifierA.listening, 10_000);
    await server().sql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'granary-frontend-a-listener'",
    );
    await until(() => !notifierA.listening, 10_000);
    await b.scheduler.heartbeat(ctx, 'w', []);
    await b.scheduler.take(ctx, 'w', 1);
    await b.scheduler.complete(ctx, 'w', op.name, successResponse(3));
    assert.equal(notifierA.listening, false, 'the change was made while A could not hear of it');
    await until(() => seen.includes('COMPLETED'), 20_000);
    assert.equal((await a.get(ctx, op.name))?.response?.result?.exitCode, 3);
  });

  it('stalls while PostgreSQL restarts and then carries on, losing nothing', async (t) => {
    const postgres = server();
    const url = await postgres.createSchema();
    const quiet = { log: () => {} };
    const a = await PostgresDatabase.open({ url, ...quiet });
    const b = await PostgresDatabase.open({ url, ...quiet });
    const frontA = await openScheduler({ database: a });
    const frontB = await openScheduler({ database: b });
    t.after(async () => {
      if (!postgres.running) await postgres.start();
      await frontA.close();
      await frontB.close();
      await a.close();
      await b.close();
    });
    await frontB.heartbeat(ctx, 'w', []);
    const running = await frontA.submit(ctx, actionRequest('running'));
    const queued = await frontA.submit(ctx, actionRequest('queued'));
    await frontB.take(ctx, 'w', 1);
    const seen: string[] = [];
    await frontA.watch(ctx, running.name, (record) => seen.push(record.stage));
    await postgres.stop();
    // Calls made during the outage wait for the database rather than fail.
    const completing = frontB.complete(ctx, 'w', running.name, successResponse(8));
    const submitting = frontA.submit(ctx, actionRequest('during the outage'));
    await new Promise((resolve) => setTimeout(resolve, 500));
    await postgres.start();
    await completing;
    const during = await submitting;
    await until(() => seen.includes('COMPLETED'), 30_000);
    assert.equal((await frontA.get(ctx, running.name))?.response?.result?.exitCode, 8);
    const rest = (await frontB.take(ctx, 'w', 10)).map((assignment) => assignment.operationName);
    assert.deepEqual(new Set(rest), new Set([queued.name, during.name]), 'queued work is still there');
  });
});
