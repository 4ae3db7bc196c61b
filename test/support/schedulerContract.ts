/**
 * The behaviour every Scheduler implementation must show. Each implementation's
 * test file calls schedulerContract with a factory for a fresh, empty scheduler,
 * so another implementation (a shared database for scaled-out frontends) is
 * checked against exactly the rules the embedded one follows.
 *
 * The factory may say how many attempts its scheduler allows
 * (`maximumAttempts`); otherwise the rule "an action lost by too many workers
 * fails with UNAVAILABLE" is checked with any limit up to 20.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { digestOf } from '../../src/digest/digest.js';
import type { Scheduler } from '../../src/execution/scheduler.js';
import type { ActionRequest, OperationRecord, PlatformProperty } from '../../src/execution/types.js';
import { ExecuteResponse } from '../../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code, StatusError } from '../../src/util/status.js';

export interface ContractScheduler {
  scheduler: Scheduler;
  cleanup(): Promise<void>;
  /** The scheduler's attempt limit, when the factory knows it. */
  maximumAttempts?: number;
}

/** A queueable request for a distinct action per `seed`. */
export function actionRequest(seed: string | number, overrides: Partial<ActionRequest> = {}): ActionRequest {
  return {
    instanceName: '',
    digestFunction: 1,
    actionDigest: digestOf(`action ${seed}`),
    platform: [],
    priority: 0,
    clientKey: 'client',
    doNotCache: false,
    timeoutMs: 60_000,
    ...overrides,
  };
}

/** A successful ExecuteResponse whose exit code tells responses apart. */
export function successResponse(exitCode = 0): ExecuteResponse {
  return ExecuteResponse.fromPartial({
    result: { exitCode, stdoutDigest: digestOf(`stdout ${exitCode}`) },
    status: { code: Code.OK, message: '', details: [] },
  });
}

const props = (...pairs: Array<[string, string]>): PlatformProperty[] =>
  pairs.map(([name, value]) => ({ name, value }));

export function schedulerContract(name: string, make: () => Promise<ContractScheduler>): void {
  describe(`${name} (Scheduler contract)`, () => {
    let made: ContractScheduler;
    let s: Scheduler;

    beforeEach(async () => {
      made = await make();
      s = made.scheduler;
    });
    afterEach(async () => {
      await made.cleanup();
    });

    async function stageOf(name: string): Promise<OperationRecord['stage'] | undefined> {
      return (await s.get(name))?.stage;
    }

    async function takeNames(workerId: string, maximum: number): Promise<string[]> {
      return (await s.take(workerId, maximum)).map((a) => a.operationName);
    }

    describe('submitting and watching', () => {
      it('queues a submitted action as a new QUEUED operation', async () => {
        const request = actionRequest(1);
        const op = await s.submit(request);
        assert.equal(op.stage, 'QUEUED');
        assert.equal(op.attempts, 0);
        assert.deepEqual(op.request.actionDigest, request.actionDigest);
        const stored = await s.get(op.name);
        assert.equal(stored?.stage, 'QUEUED');
        assert.ok((await s.list()).some((o) => o.name === op.name));
      });

      it('reports the current stage to a new watcher and then every change until unwatched', async () => {
        await s.heartbeat('w', []);
        const op = await s.submit(actionRequest(1));
        const seen: OperationRecord[] = [];
        const early: string[] = [];
        await s.watch(op.name, (r) => seen.push(r));
        const stopEarly = await s.watch(op.name, (r) => early.push(r.stage));
        assert.deepEqual(
          seen.map((r) => r.stage),
          ['QUEUED'],
        );
        assert.deepEqual(await takeNames('w', 1), [op.name]);
        stopEarly();
        await s.complete('w', op.name, successResponse(7));
        assert.deepEqual(
          seen.map((r) => r.stage),
          ['QUEUED', 'EXECUTING', 'COMPLETED'],
        );
        assert.equal(seen.at(-1)?.response?.result?.exitCode, 7);
        assert.deepEqual(early, ['QUEUED', 'EXECUTING'], 'no changes are reported after unwatching');
      });

      it('refuses to watch an unknown operation with NOT_FOUND', async () => {
        await assert.rejects(
          s.watch('operations/unknown', () => {}),
          (error: unknown) => {
            assert.ok(error instanceof StatusError);
            assert.equal(error.code, Code.NOT_FOUND);
            return true;
          },
        );
      });

      it('records an action cache hit as an operation that is already COMPLETED', async () => {
        await s.heartbeat('w', []);
        const request = actionRequest(1);
        const op = await s.recordCompleted(request, successResponse(3));
        assert.equal(op.stage, 'COMPLETED');
        assert.equal((await s.get(op.name))?.response?.result?.exitCode, 3);
        const seen: string[] = [];
        await s.watch(op.name, (r) => seen.push(r.stage));
        assert.deepEqual(seen, ['COMPLETED']);
        assert.deepEqual(await s.take('w', 10), [], 'a cache hit is never handed to a worker');
        const next = await s.submit(request);
        assert.notEqual(next.name, op.name, 'a completed operation is not joined');
        assert.equal(next.stage, 'QUEUED');
      });
    });

    describe('deduplication', () => {
      it('joins an identical action that is still in flight', async () => {
        const first = await s.submit(actionRequest(1, { clientKey: 'a' }));
        const second = await s.submit(actionRequest(1, { clientKey: 'b' }));
        assert.equal(second.name, first.name);
        await s.heartbeat('w', []);
        assert.deepEqual(await takeNames('w', 1), [first.name]);
        const third = await s.submit(actionRequest(1, { clientKey: 'c' }));
        assert.equal(third.name, first.name, 'an executing action is joined too');
        assert.equal(third.stage, 'EXECUTING');
        assert.deepEqual(await s.take('w', 10), [], 'the action runs once');
      });

      it('keeps actions apart that differ in instance name, digest function or action digest', async () => {
        const base = await s.submit(actionRequest(1));
        const names = new Set([base.name]);
        names.add((await s.submit(actionRequest(1, { instanceName: 'other' }))).name);
        names.add((await s.submit(actionRequest(1, { digestFunction: 6 }))).name);
        names.add((await s.submit(actionRequest(2))).name);
        assert.equal(names.size, 4);
      });

      it('does not deduplicate actions marked do_not_cache', async () => {
        const first = await s.submit(actionRequest(1, { doNotCache: true }));
        const second = await s.submit(actionRequest(1, { doNotCache: true }));
        assert.notEqual(second.name, first.name);
        const cached = await s.submit(actionRequest(1));
        assert.notEqual(cached.name, first.name, 'a cacheable action does not join a do_not_cache one');
        assert.notEqual(cached.name, second.name);
      });

      it('starts a new operation once the in-flight one has completed', async () => {
        await s.heartbeat('w', []);
        const first = await s.submit(actionRequest(1));
        await s.take('w', 1);
        await s.complete('w', first.name, successResponse());
        const again = await s.submit(actionRequest(1));
        assert.notEqual(again.name, first.name);
        assert.equal(again.stage, 'QUEUED');
      });
    });

    describe('handing out work', () => {
      it('hands a worker only actions whose platform it satisfies', async () => {
        await s.heartbeat('linux', props(['OSFamily', 'linux'], ['pool', 'small'], ['pool', 'large']));
        const any = await s.submit(actionRequest('any'));
        const linux = await s.submit(actionRequest('linux', { platform: props(['OSFamily', 'linux']) }));
        const large = await s.submit(
          actionRequest('large', { platform: props(['OSFamily', 'linux'], ['pool', 'large']) }),
        );
        const windows = await s.submit(actionRequest('windows', { platform: props(['OSFamily', 'Windows']) }));
        const gpu = await s.submit(actionRequest('gpu', { platform: props(['OSFamily', 'linux'], ['gpu', 'yes']) }));
        const caseDiffers = await s.submit(actionRequest('case', { platform: props(['OSFamily', 'Linux']) }));
        const taken = await takeNames('linux', 10);
        assert.deepEqual(new Set(taken), new Set([any.name, linux.name, large.name]));
        for (const op of [windows, gpu, caseDiffers]) assert.equal(await stageOf(op.name), 'QUEUED');
        await s.heartbeat('windows', props(['OSFamily', 'Windows']));
        assert.deepEqual(await takeNames('windows', 10), [windows.name]);
      });

      it('hands out at most the number of actions asked for', async () => {
        await s.heartbeat('w', []);
        for (let i = 0; i < 5; i++) await s.submit(actionRequest(i));
        assert.equal((await s.take('w', 2)).length, 2);
        assert.equal((await s.take('w', 0)).length, 0);
        assert.equal((await s.take('w', 10)).length, 3);
        assert.equal((await s.take('w', 10)).length, 0);
      });

      it('gives nothing to a worker that never announced itself', async () => {
        await s.submit(actionRequest(1));
        assert.deepEqual(await s.take('stranger', 10), []);
      });

      it('marks taken operations EXECUTING on that worker and counts the attempt', async () => {
        await s.heartbeat('w', []);
        const op = await s.submit(actionRequest(1));
        const [assignment] = await s.take('w', 1);
        assert.equal(assignment?.operationName, op.name);
        assert.deepEqual(assignment?.request.actionDigest, op.request.actionDigest);
        const record = await s.get(op.name);
        assert.equal(record?.stage, 'EXECUTING');
        assert.equal(record?.workerId, 'w');
        assert.equal(record?.attempts, 1);
        assert.equal(await s.shouldAbandon('w', op.name), false);
        assert.equal(await s.shouldAbandon('other', op.name), true);
      });

      it('hands out lower priority values first', async () => {
        await s.heartbeat('w', []);
        const late = await s.submit(actionRequest('late', { priority: 5 }));
        const normal = await s.submit(actionRequest('normal', { priority: 0 }));
        const urgent = await s.submit(actionRequest('urgent', { priority: -3 }));
        assert.deepEqual(await takeNames('w', 1), [urgent.name]);
        assert.deepEqual(await takeNames('w', 2), [normal.name, late.name]);
      });

      it('hands out the actions of one client in submission order', async () => {
        await s.heartbeat('w', []);
        const ops = [];
        for (let i = 0; i < 5; i++) ops.push(await s.submit(actionRequest(i)));
        const taken = [];
        for (let i = 0; i < 5; i++) taken.push(...(await takeNames('w', 1)));
        assert.deepEqual(
          taken,
          ops.map((o) => o.name),
        );
      });

      it('shares workers fairly: a second client is served early, not after all of the first one', async () => {
        await s.heartbeat('w', []);
        for (let i = 0; i < 10; i++) await s.submit(actionRequest(`a${i}`, { clientKey: 'A' }));
        const b = [
          await s.submit(actionRequest('b0', { clientKey: 'B' })),
          await s.submit(actionRequest('b1', { clientKey: 'B' })),
        ];
        const firstTakes: string[] = [];
        for (let i = 0; i < 4; i++) firstTakes.push(...(await takeNames('w', 1)));
        for (const op of b) assert.ok(firstTakes.includes(op.name), `B's ${op.name} is among the first 4 taken`);
      });

      it('raises a queued shared operation to the most urgent priority of its waiters', async () => {
        await s.heartbeat('w', []);
        const other = await s.submit(actionRequest('other', { priority: 0 }));
        const shared = await s.submit(actionRequest('shared', { priority: 10, clientKey: 'x' }));
        await s.submit(actionRequest('shared', { priority: -1, clientKey: 'y' }));
        assert.deepEqual(await takeNames('w', 2), [shared.name, other.name]);
      });
    });

    describe('completion', () => {
      it('completes an operation with the worker’s response and notifies watchers', async () => {
        await s.heartbeat('w', []);
        const op = await s.submit(actionRequest(1));
        await s.take('w', 1);
        const seen: OperationRecord[] = [];
        await s.watch(op.name, (r) => seen.push(r));
        await s.complete('w', op.name, successResponse(4));
        const record = await s.get(op.name);
        assert.equal(record?.stage, 'COMPLETED');
        assert.equal(record?.response?.result?.exitCode, 4);
        assert.equal(seen.at(-1)?.stage, 'COMPLETED');
        assert.equal(seen.at(-1)?.response?.result?.exitCode, 4);
        assert.equal(await s.shouldAbandon('w', op.name), true, 'a finished operation is not worked on');
      });

      it('ignores a completion from a worker that does not own the operation', async () => {
        await s.heartbeat('w1', []);
        await s.heartbeat('w2', []);
        const op = await s.submit(actionRequest(1));
        await s.take('w1', 1);
        await s.complete('w2', op.name, successResponse(9));
        assert.equal(await stageOf(op.name), 'EXECUTING');
        await s.removeWorker('w1');
        assert.deepEqual(await takeNames('w2', 1), [op.name]);
        await s.complete('w1', op.name, successResponse(9));
        assert.equal(await stageOf(op.name), 'EXECUTING', 'the previous owner no longer counts');
        await s.complete('w2', op.name, successResponse(2));
        assert.equal((await s.get(op.name))?.response?.result?.exitCode, 2);
        await s.complete('w2', op.name, successResponse(9));
        assert.equal((await s.get(op.name))?.response?.result?.exitCode, 2, 'a second completion changes nothing');
      });

      it('ignores a completion for an operation that was never handed out', async () => {
        const op = await s.submit(actionRequest(1));
        await s.heartbeat('w', []);
        await s.complete('w', op.name, successResponse());
        assert.equal(await stageOf(op.name), 'QUEUED');
        await s.complete('w', 'operations/unknown', successResponse());
      });
    });

    describe('cancellation', () => {
      it('completes a queued operation with CANCELLED and never hands it out', async () => {
        await s.heartbeat('w', []);
        const op = await s.submit(actionRequest(1));
        const seen: OperationRecord[] = [];
        await s.watch(op.name, (r) => seen.push(r));
        assert.equal(await s.cancel(op.name), true);
        const record = await s.get(op.name);
        assert.equal(record?.stage, 'COMPLETED');
        assert.equal(record?.response?.status?.code, Code.CANCELLED);
        assert.equal(seen.at(-1)?.stage, 'COMPLETED');
        assert.deepEqual(await s.take('w', 10), []);
        const again = await s.submit(actionRequest(1));
        assert.notEqual(again.name, op.name, 'a cancelled operation is not joined');
      });

      it('completes an executing operation with CANCELLED and tells its worker to abandon it', async () => {
        await s.heartbeat('w', []);
        const op = await s.submit(actionRequest(1));
        await s.take('w', 1);
        assert.equal(await s.shouldAbandon('w', op.name), false);
        assert.equal(await s.cancel(op.name), true);
        assert.equal((await s.get(op.name))?.response?.status?.code, Code.CANCELLED);
        assert.equal(await s.shouldAbandon('w', op.name), true);
        await s.complete('w', op.name, successResponse());
        assert.equal((await s.get(op.name))?.response?.status?.code, Code.CANCELLED, 'a late result does not undo it');
      });

      it('leaves a completed operation as it is and reports unknown ones', async () => {
        await s.heartbeat('w', []);
        const op = await s.submit(actionRequest(1));
        await s.take('w', 1);
        await s.complete('w', op.name, successResponse(5));
        assert.equal(await s.cancel(op.name), true);
        assert.equal((await s.get(op.name))?.response?.result?.exitCode, 5);
        assert.equal(await s.cancel('operations/unknown'), false);
      });
    });

    describe('lost workers and released work', () => {
      it('requeues the executing operations of a removed worker', async () => {
        await s.heartbeat('w1', []);
        await s.heartbeat('w2', []);
        const op = await s.submit(actionRequest(1));
        const other = await s.submit(actionRequest(2));
        await s.take('w1', 1);
        await s.take('w2', 1);
        await s.removeWorker('w1');
        assert.equal(await stageOf(op.name), 'QUEUED');
        assert.equal(await stageOf(other.name), 'EXECUTING', 'other workers keep their work');
        assert.equal(await s.shouldAbandon('w1', op.name), true);
        await s.heartbeat('w3', []);
        assert.deepEqual(await takeNames('w3', 10), [op.name]);
        assert.equal((await s.get(op.name))?.attempts, 2);
      });

      it('fails an action with UNAVAILABLE once it was lost by the maximum number of workers', async () => {
        const op = await s.submit(actionRequest(1));
        let attempts = 0;
        for (; attempts < 20; attempts++) {
          const worker = `w${attempts}`;
          await s.heartbeat(worker, []);
          assert.deepEqual(await takeNames(worker, 1), [op.name], `attempt ${attempts + 1} is handed out`);
          await s.removeWorker(worker);
          if ((await stageOf(op.name)) === 'COMPLETED') break;
          assert.equal(await stageOf(op.name), 'QUEUED');
        }
        const record = await s.get(op.name);
        assert.equal(record?.stage, 'COMPLETED', 'the action gives up eventually');
        assert.equal(record?.response?.status?.code, Code.UNAVAILABLE);
        if (made.maximumAttempts !== undefined) assert.equal(attempts + 1, made.maximumAttempts);
      });

      it('requeues a released operation without counting an attempt', async () => {
        await s.heartbeat('w', []);
        const op = await s.submit(actionRequest(1));
        for (let i = 0; i < 25; i++) {
          assert.deepEqual(await takeNames('w', 1), [op.name]);
          await s.release('w', op.name);
          const record = await s.get(op.name);
          assert.equal(record?.stage, 'QUEUED', `release ${i + 1} requeues`);
          assert.equal(record?.attempts, 0);
        }
      });

      it('ignores a release from a worker that does not own the operation', async () => {
        await s.heartbeat('w1', []);
        const op = await s.submit(actionRequest(1));
        await s.take('w1', 1);
        await s.release('w2', op.name);
        assert.equal(await stageOf(op.name), 'EXECUTING');
      });
    });

    describe('could an action run', () => {
      it('says no when live workers exist but none satisfies the platform, and yes when one does', async () => {
        await s.heartbeat('linux', props(['OSFamily', 'linux']));
        assert.equal(await s.couldRun(props(['OSFamily', 'Windows'])), false);
        assert.equal(await s.couldRun(props(['OSFamily', 'linux'], ['gpu', 'yes'])), false);
        assert.equal(await s.couldRun(props(['OSFamily', 'linux'])), true);
        assert.equal(await s.couldRun([]), true);
        await s.heartbeat('windows', props(['OSFamily', 'Windows']));
        assert.equal(await s.couldRun(props(['OSFamily', 'Windows'])), true);
      });
    });

    describe('deletion', () => {
      it('forgets a deleted operation and reports unknown ones', async () => {
        await s.heartbeat('w', []);
        const op = await s.submit(actionRequest(1));
        await s.take('w', 1);
        await s.complete('w', op.name, successResponse());
        assert.equal(await s.delete(op.name), true);
        assert.equal(await s.get(op.name), undefined);
        assert.ok(!(await s.list()).some((o) => o.name === op.name));
        assert.equal(await s.delete(op.name), false);
      });

      it('stops a deleted in-flight operation from running or being joined', async () => {
        await s.heartbeat('w', []);
        const op = await s.submit(actionRequest(1));
        assert.equal(await s.delete(op.name), true);
        assert.deepEqual(await s.take('w', 10), []);
        const again = await s.submit(actionRequest(1));
        assert.notEqual(again.name, op.name);
      });
    });

    describe('waiting for work', () => {
      it('wakes a waiting worker promptly when an action is submitted', async () => {
        const started = Date.now();
        const waiting = s.waitForWork(5_000);
        setTimeout(() => void s.submit(actionRequest(1)), 20);
        await waiting;
        assert.ok(Date.now() - started < 1_000, `woke after ${Date.now() - started} ms`);
      });

      it('gives up waiting after the timeout or when aborted', async () => {
        let started = Date.now();
        await s.waitForWork(30);
        assert.ok(Date.now() - started < 1_000);
        const abort = new AbortController();
        started = Date.now();
        const waiting = s.waitForWork(5_000, abort.signal);
        setTimeout(() => abort.abort(), 20);
        await waiting;
        assert.ok(Date.now() - started < 1_000, `aborted wait returned after ${Date.now() - started} ms`);
        started = Date.now();
        await s.waitForWork(5_000, abort.signal);
        assert.ok(Date.now() - started < 1_000, 'an already aborted signal does not wait');
      });
    });
  });
}
