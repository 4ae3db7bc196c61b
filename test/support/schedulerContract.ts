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
import { backgroundContext, type RequestContext } from '../../src/context/requestContext.js';
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

/** The context of the contract's calls: no deadline, never aborted. */
const ctx = backgroundContext();

/** A context that aborts with `signal`. */
const abortable = (signal: AbortSignal): RequestContext => ({ ...ctx, signal });

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
      return (await s.get(ctx, name))?.stage;
    }

    async function takeNames(workerId: string, maximum: number): Promise<string[]> {
      return (await s.take(ctx, workerId, maximum)).map((a) => a.operationName);
    }

    describe('submitting and watching', () => {
      it('queues a submitted action as a new QUEUED operation', async () => {
        const request = actionRequest(1);
        const op = await s.submit(ctx, request);
        assert.equal(op.stage, 'QUEUED');
        assert.equal(op.attempts, 0);
        assert.deepEqual(op.request.actionDigest, request.actionDigest);
        const stored = await s.get(ctx, op.name);
        assert.equal(stored?.stage, 'QUEUED');
        assert.ok((await s.list(ctx)).operations.some((o) => o.name === op.name));
      });

      it('reports the current stage to a new watcher and then every change until unwatched', async () => {
        await s.heartbeat(ctx, 'w', []);
        const op = await s.submit(ctx, actionRequest(1));
        const seen: OperationRecord[] = [];
        const early: string[] = [];
        await s.watch(ctx, op.name, (r) => seen.push(r));
        const stopEarly = await s.watch(ctx, op.name, (r) => early.push(r.stage));
        assert.deepEqual(
          seen.map((r) => r.stage),
          ['QUEUED'],
        );
        assert.deepEqual(await takeNames('w', 1), [op.name]);
        stopEarly();
        await s.complete(ctx, 'w', op.name, successResponse(7));
        assert.deepEqual(
          seen.map((r) => r.stage),
          ['QUEUED', 'EXECUTING', 'COMPLETED'],
        );
        assert.equal(seen.at(-1)?.response?.result?.exitCode, 7);
        assert.deepEqual(early, ['QUEUED', 'EXECUTING'], 'no changes are reported after unwatching');
      });

      it('refuses to watch an unknown operation with NOT_FOUND', async () => {
        await assert.rejects(
          s.watch(ctx, 'operations/unknown', () => {}),
          (error: unknown) => {
            assert.ok(error instanceof StatusError);
            assert.equal(error.code, Code.NOT_FOUND);
            return true;
          },
        );
      });

      it('records an action cache hit as an operation that is already COMPLETED', async () => {
        await s.heartbeat(ctx, 'w', []);
        const request = actionRequest(1);
        const op = await s.recordCompleted(ctx, request, successResponse(3));
        assert.equal(op.stage, 'COMPLETED');
        assert.equal((await s.get(ctx, op.name))?.response?.result?.exitCode, 3);
        const seen: string[] = [];
        await s.watch(ctx, op.name, (r) => seen.push(r.stage));
        assert.deepEqual(seen, ['COMPLETED']);
        assert.deepEqual(await s.take(ctx, 'w', 10), [], 'a cache hit is never handed to a worker');
        const next = await s.submit(ctx, request);
        assert.notEqual(next.name, op.name, 'a completed operation is not joined');
        assert.equal(next.stage, 'QUEUED');
      });
    });

    describe('deduplication', () => {
      it('joins an identical action that is still in flight', async () => {
        const first = await s.submit(ctx, actionRequest(1, { clientKey: 'a' }));
        const second = await s.submit(ctx, actionRequest(1, { clientKey: 'b' }));
        assert.equal(second.name, first.name);
        await s.heartbeat(ctx, 'w', []);
        assert.deepEqual(await takeNames('w', 1), [first.name]);
        const third = await s.submit(ctx, actionRequest(1, { clientKey: 'c' }));
        assert.equal(third.name, first.name, 'an executing action is joined too');
        assert.equal(third.stage, 'EXECUTING');
        assert.deepEqual(await s.take(ctx, 'w', 10), [], 'the action runs once');
      });

      it('keeps actions apart that differ in instance name, digest function or action digest', async () => {
        const base = await s.submit(ctx, actionRequest(1));
        const names = new Set([base.name]);
        names.add((await s.submit(ctx, actionRequest(1, { instanceName: 'other' }))).name);
        names.add((await s.submit(ctx, actionRequest(1, { digestFunction: 6 }))).name);
        names.add((await s.submit(ctx, actionRequest(2))).name);
        assert.equal(names.size, 4);
      });

      it('does not deduplicate actions marked do_not_cache', async () => {
        const first = await s.submit(ctx, actionRequest(1, { doNotCache: true }));
        const second = await s.submit(ctx, actionRequest(1, { doNotCache: true }));
        assert.notEqual(second.name, first.name);
        const cached = await s.submit(ctx, actionRequest(1));
        assert.notEqual(cached.name, first.name, 'a cacheable action does not join a do_not_cache one');
        assert.notEqual(cached.name, second.name);
      });

      it('starts a new operation once the in-flight one has completed', async () => {
        await s.heartbeat(ctx, 'w', []);
        const first = await s.submit(ctx, actionRequest(1));
        await s.take(ctx, 'w', 1);
        await s.complete(ctx, 'w', first.name, successResponse());
        const again = await s.submit(ctx, actionRequest(1));
        assert.notEqual(again.name, first.name);
        assert.equal(again.stage, 'QUEUED');
      });
    });

    describe('handing out work', () => {
      it('hands a worker only actions whose platform it satisfies', async () => {
        await s.heartbeat(ctx, 'linux', props(['OSFamily', 'linux'], ['pool', 'small'], ['pool', 'large']));
        const any = await s.submit(ctx, actionRequest('any'));
        const linux = await s.submit(ctx, actionRequest('linux', { platform: props(['OSFamily', 'linux']) }));
        const large = await s.submit(
          ctx,
          actionRequest('large', { platform: props(['OSFamily', 'linux'], ['pool', 'large']) }),
        );
        const windows = await s.submit(ctx, actionRequest('windows', { platform: props(['OSFamily', 'Windows']) }));
        const gpu = await s.submit(
          ctx,
          actionRequest('gpu', { platform: props(['OSFamily', 'linux'], ['gpu', 'yes']) }),
        );
        // OSFamily compares case-insensitively (issue 9: Bazel users write OSFamily=Linux).
        const caseDiffers = await s.submit(ctx, actionRequest('case', { platform: props(['OSFamily', 'Linux']) }));
        const taken = await takeNames('linux', 10);
        assert.deepEqual(new Set(taken), new Set([any.name, linux.name, large.name, caseDiffers.name]));
        for (const op of [windows, gpu]) assert.equal(await stageOf(op.name), 'QUEUED');
        await s.heartbeat(ctx, 'windows', props(['OSFamily', 'Windows']));
        assert.deepEqual(await takeNames('windows', 10), [windows.name]);
      });

      it('hands out at most the number of actions asked for', async () => {
        await s.heartbeat(ctx, 'w', []);
        for (let i = 0; i < 5; i++) await s.submit(ctx, actionRequest(i));
        assert.equal((await s.take(ctx, 'w', 2)).length, 2);
        assert.equal((await s.take(ctx, 'w', 0)).length, 0);
        assert.equal((await s.take(ctx, 'w', 10)).length, 3);
        assert.equal((await s.take(ctx, 'w', 10)).length, 0);
      });

      it('gives nothing to a worker that never announced itself', async () => {
        await s.submit(ctx, actionRequest(1));
        assert.deepEqual(await s.take(ctx, 'stranger', 10), []);
      });

      it('marks taken operations EXECUTING on that worker and counts the attempt', async () => {
        await s.heartbeat(ctx, 'w', []);
        const op = await s.submit(ctx, actionRequest(1));
        const [assignment] = await s.take(ctx, 'w', 1);
        assert.equal(assignment?.operationName, op.name);
        assert.deepEqual(assignment?.request.actionDigest, op.request.actionDigest);
        const record = await s.get(ctx, op.name);
        assert.equal(record?.stage, 'EXECUTING');
        assert.equal(record?.workerId, 'w');
        assert.equal(record?.attempts, 1);
        assert.equal(await s.shouldAbandon(ctx, 'w', op.name), false);
        assert.equal(await s.shouldAbandon(ctx, 'other', op.name), true);
      });

      it('hands out lower priority values first', async () => {
        await s.heartbeat(ctx, 'w', []);
        const late = await s.submit(ctx, actionRequest('late', { priority: 5 }));
        const normal = await s.submit(ctx, actionRequest('normal', { priority: 0 }));
        const urgent = await s.submit(ctx, actionRequest('urgent', { priority: -3 }));
        assert.deepEqual(await takeNames('w', 1), [urgent.name]);
        assert.deepEqual(await takeNames('w', 2), [normal.name, late.name]);
      });

      it('hands out the actions of one client in submission order', async () => {
        await s.heartbeat(ctx, 'w', []);
        const ops = [];
        for (let i = 0; i < 5; i++) ops.push(await s.submit(ctx, actionRequest(i)));
        const taken = [];
        for (let i = 0; i < 5; i++) taken.push(...(await takeNames('w', 1)));
        assert.deepEqual(
          taken,
          ops.map((o) => o.name),
        );
      });

      it('shares workers fairly: a second client is served early, not after all of the first one', async () => {
        await s.heartbeat(ctx, 'w', []);
        for (let i = 0; i < 10; i++) await s.submit(ctx, actionRequest(`a${i}`, { clientKey: 'A' }));
        const b = [
          await s.submit(ctx, actionRequest('b0', { clientKey: 'B' })),
          await s.submit(ctx, actionRequest('b1', { clientKey: 'B' })),
        ];
        const firstTakes: string[] = [];
        for (let i = 0; i < 4; i++) firstTakes.push(...(await takeNames('w', 1)));
        for (const op of b) assert.ok(firstTakes.includes(op.name), `B's ${op.name} is among the first 4 taken`);
      });

      it('raises a queued shared operation to the most urgent priority of its waiters', async () => {
        await s.heartbeat(ctx, 'w', []);
        const other = await s.submit(ctx, actionRequest('other', { priority: 0 }));
        const shared = await s.submit(ctx, actionRequest('shared', { priority: 10, clientKey: 'x' }));
        await s.submit(ctx, actionRequest('shared', { priority: -1, clientKey: 'y' }));
        assert.deepEqual(await takeNames('w', 2), [shared.name, other.name]);
      });
    });

    describe('completion', () => {
      it('completes an operation with the worker’s response and notifies watchers', async () => {
        await s.heartbeat(ctx, 'w', []);
        const op = await s.submit(ctx, actionRequest(1));
        await s.take(ctx, 'w', 1);
        const seen: OperationRecord[] = [];
        await s.watch(ctx, op.name, (r) => seen.push(r));
        await s.complete(ctx, 'w', op.name, successResponse(4));
        const record = await s.get(ctx, op.name);
        assert.equal(record?.stage, 'COMPLETED');
        assert.equal(record?.response?.result?.exitCode, 4);
        assert.equal(seen.at(-1)?.stage, 'COMPLETED');
        assert.equal(seen.at(-1)?.response?.result?.exitCode, 4);
        assert.equal(await s.shouldAbandon(ctx, 'w', op.name), true, 'a finished operation is not worked on');
      });

      it('ignores a completion from a worker that does not own the operation', async () => {
        await s.heartbeat(ctx, 'w1', []);
        await s.heartbeat(ctx, 'w2', []);
        const op = await s.submit(ctx, actionRequest(1));
        await s.take(ctx, 'w1', 1);
        await s.complete(ctx, 'w2', op.name, successResponse(9));
        assert.equal(await stageOf(op.name), 'EXECUTING');
        await s.removeWorker(ctx, 'w1');
        assert.deepEqual(await takeNames('w2', 1), [op.name]);
        await s.complete(ctx, 'w1', op.name, successResponse(9));
        assert.equal(await stageOf(op.name), 'EXECUTING', 'the previous owner no longer counts');
        await s.complete(ctx, 'w2', op.name, successResponse(2));
        assert.equal((await s.get(ctx, op.name))?.response?.result?.exitCode, 2);
        await s.complete(ctx, 'w2', op.name, successResponse(9));
        assert.equal((await s.get(ctx, op.name))?.response?.result?.exitCode, 2, 'a second completion changes nothing');
      });

      it('ignores a completion for an operation that was never handed out', async () => {
        const op = await s.submit(ctx, actionRequest(1));
        await s.heartbeat(ctx, 'w', []);
        await s.complete(ctx, 'w', op.name, successResponse());
        assert.equal(await stageOf(op.name), 'QUEUED');
        await s.complete(ctx, 'w', 'operations/unknown', successResponse());
      });
    });

    describe('cancellation', () => {
      it('completes a queued operation with CANCELLED and never hands it out', async () => {
        await s.heartbeat(ctx, 'w', []);
        const op = await s.submit(ctx, actionRequest(1));
        const seen: OperationRecord[] = [];
        await s.watch(ctx, op.name, (r) => seen.push(r));
        assert.equal(await s.cancel(ctx, op.name), true);
        const record = await s.get(ctx, op.name);
        assert.equal(record?.stage, 'COMPLETED');
        assert.equal(record?.response?.status?.code, Code.CANCELLED);
        assert.equal(seen.at(-1)?.stage, 'COMPLETED');
        assert.deepEqual(await s.take(ctx, 'w', 10), []);
        const again = await s.submit(ctx, actionRequest(1));
        assert.notEqual(again.name, op.name, 'a cancelled operation is not joined');
      });

      it('completes an executing operation with CANCELLED and tells its worker to abandon it', async () => {
        await s.heartbeat(ctx, 'w', []);
        const op = await s.submit(ctx, actionRequest(1));
        await s.take(ctx, 'w', 1);
        assert.equal(await s.shouldAbandon(ctx, 'w', op.name), false);
        assert.equal(await s.cancel(ctx, op.name), true);
        assert.equal((await s.get(ctx, op.name))?.response?.status?.code, Code.CANCELLED);
        assert.equal(await s.shouldAbandon(ctx, 'w', op.name), true);
        await s.complete(ctx, 'w', op.name, successResponse());
        assert.equal(
          (await s.get(ctx, op.name))?.response?.status?.code,
          Code.CANCELLED,
          'a late result does not undo it',
        );
      });

      it('leaves a completed operation as it is and reports unknown ones', async () => {
        await s.heartbeat(ctx, 'w', []);
        const op = await s.submit(ctx, actionRequest(1));
        await s.take(ctx, 'w', 1);
        await s.complete(ctx, 'w', op.name, successResponse(5));
        assert.equal(await s.cancel(ctx, op.name), true);
        assert.equal((await s.get(ctx, op.name))?.response?.result?.exitCode, 5);
        assert.equal(await s.cancel(ctx, 'operations/unknown'), false);
      });
    });

    describe('lost workers and released work', () => {
      it('requeues the executing operations of a removed worker', async () => {
        await s.heartbeat(ctx, 'w1', []);
        await s.heartbeat(ctx, 'w2', []);
        const op = await s.submit(ctx, actionRequest(1));
        const other = await s.submit(ctx, actionRequest(2));
        await s.take(ctx, 'w1', 1);
        await s.take(ctx, 'w2', 1);
        await s.removeWorker(ctx, 'w1');
        assert.equal(await stageOf(op.name), 'QUEUED');
        assert.equal(await stageOf(other.name), 'EXECUTING', 'other workers keep their work');
        assert.equal(await s.shouldAbandon(ctx, 'w1', op.name), true);
        await s.heartbeat(ctx, 'w3', []);
        assert.deepEqual(await takeNames('w3', 10), [op.name]);
        assert.equal((await s.get(ctx, op.name))?.attempts, 2);
      });

      it('fails an action with UNAVAILABLE once it was lost by the maximum number of workers', async () => {
        const op = await s.submit(ctx, actionRequest(1));
        let attempts = 0;
        for (; attempts < 20; attempts++) {
          const worker = `w${attempts}`;
          await s.heartbeat(ctx, worker, []);
          assert.deepEqual(await takeNames(worker, 1), [op.name], `attempt ${attempts + 1} is handed out`);
          await s.removeWorker(ctx, worker);
          if ((await stageOf(op.name)) === 'COMPLETED') break;
          assert.equal(await stageOf(op.name), 'QUEUED');
        }
        const record = await s.get(ctx, op.name);
        assert.equal(record?.stage, 'COMPLETED', 'the action gives up eventually');
        assert.equal(record?.response?.status?.code, Code.UNAVAILABLE);
        if (made.maximumAttempts !== undefined) assert.equal(attempts + 1, made.maximumAttempts);
      });

      it('requeues a released operation without counting an attempt', async () => {
        await s.heartbeat(ctx, 'w', []);
        const op = await s.submit(ctx, actionRequest(1));
        for (let i = 0; i < 25; i++) {
          assert.deepEqual(await takeNames('w', 1), [op.name]);
          await s.release(ctx, 'w', op.name);
          const record = await s.get(ctx, op.name);
          assert.equal(record?.stage, 'QUEUED', `release ${i + 1} requeues`);
          assert.equal(record?.attempts, 0);
        }
      });

      it('ignores a release from a worker that does not own the operation', async () => {
        await s.heartbeat(ctx, 'w1', []);
        const op = await s.submit(ctx, actionRequest(1));
        await s.take(ctx, 'w1', 1);
        await s.release(ctx, 'w2', op.name);
        assert.equal(await stageOf(op.name), 'EXECUTING');
      });
    });

    describe('could an action run', () => {
      it('says no when live workers exist but none satisfies the platform, and yes when one does', async () => {
        await s.heartbeat(ctx, 'linux', props(['OSFamily', 'linux']));
        assert.equal(await s.couldRun(ctx, props(['OSFamily', 'Windows'])), false);
        assert.equal(await s.couldRun(ctx, props(['OSFamily', 'linux'], ['gpu', 'yes'])), false);
        assert.equal(await s.couldRun(ctx, props(['OSFamily', 'linux'])), true);
        assert.equal(await s.couldRun(ctx, []), true);
        await s.heartbeat(ctx, 'windows', props(['OSFamily', 'Windows']));
        assert.equal(await s.couldRun(ctx, props(['OSFamily', 'Windows'])), true);
      });
    });

    describe('deletion', () => {
      it('forgets a deleted operation and reports unknown ones', async () => {
        await s.heartbeat(ctx, 'w', []);
        const op = await s.submit(ctx, actionRequest(1));
        await s.take(ctx, 'w', 1);
        await s.complete(ctx, 'w', op.name, successResponse());
        assert.equal(await s.delete(ctx, op.name), true);
        assert.equal(await s.get(ctx, op.name), undefined);
        assert.ok(!(await s.list(ctx)).operations.some((o) => o.name === op.name));
        assert.equal(await s.delete(ctx, op.name), false);
      });

      it('stops a deleted in-flight operation from running or being joined', async () => {
        await s.heartbeat(ctx, 'w', []);
        const op = await s.submit(ctx, actionRequest(1));
        assert.equal(await s.delete(ctx, op.name), true);
        assert.deepEqual(await s.take(ctx, 'w', 10), []);
        const again = await s.submit(ctx, actionRequest(1));
        assert.notEqual(again.name, op.name);
      });
    });

    describe('waiting for work', () => {
      it('wakes a waiting worker promptly when an action is submitted', async () => {
        const started = Date.now();
        const waiting = s.waitForWork(ctx, 60_000);
        // The submission is awaited too: a store may wake the waiter before submit() returns.
        const submitted = new Promise((resolve, reject) => {
          setTimeout(() => s.submit(ctx, actionRequest(1)).then(resolve, reject), 20);
        });
        await waiting;
        // Well short of the wait's own 60 s: it was the submission that woke it (a loaded machine may take seconds).
        assert.ok(Date.now() - started < 30_000, `woke after ${Date.now() - started} ms`);
        await submitted;
      });

      it('gives up waiting after the timeout or when aborted', async () => {
        let started = Date.now();
        await s.waitForWork(ctx, 30);
        assert.ok(Date.now() - started < 1_000);
        const abort = new AbortController();
        started = Date.now();
        const waiting = s.waitForWork(abortable(abort.signal), 5_000);
        setTimeout(() => abort.abort(), 20);
        await waiting;
        assert.ok(Date.now() - started < 1_000, `aborted wait returned after ${Date.now() - started} ms`);
        started = Date.now();
        await s.waitForWork(abortable(abort.signal), 5_000);
        assert.ok(Date.now() - started < 1_000, 'an already aborted signal does not wait');
      });
    });

    describe('listing', () => {
      it('lists operations oldest first, a page at a time, with tokens that survive new submissions', async () => {
        const ops: OperationRecord[] = [];
        for (let i = 0; i < 5; i++) ops.push(await s.submit(ctx, actionRequest(i)));
        const names = ops.map((o) => o.name);
        const all = await s.list(ctx);
        assert.deepEqual(
          all.operations.map((o) => o.name),
          [...names].sort((a, b) => {
            const x = ops.find((o) => o.name === a)?.queuedAtMs ?? 0;
            const y = ops.find((o) => o.name === b)?.queuedAtMs ?? 0;
            return x - y || (a < b ? -1 : 1);
          }),
        );
        assert.equal(all.nextPageToken, '');
        const seen: string[] = [];
        let token = '';
        let pages = 0;
        do {
          const page = await s.list(ctx, { pageSize: 2, pageToken: token });
          seen.push(...page.operations.map((o) => o.name));
          token = page.nextPageToken;
          if (pages++ === 0) await s.submit(ctx, actionRequest('late'));
        } while (token);
        assert.deepEqual(
          seen.filter((name) => names.includes(name)),
          all.operations.map((o) => o.name),
          'no operation is skipped or repeated',
        );
        assert.ok(seen.length <= 6, 'the late one is listed at most once');
        await assert.rejects(s.list(ctx, { pageSize: 2, pageToken: 'garbage' }), (error: unknown) => {
          assert.ok(error instanceof StatusError);
          assert.equal(error.code, Code.INVALID_ARGUMENT);
          return true;
        });
      });

      it('filters operations by stage, invocation id, tool and worker', async () => {
        await s.heartbeat(ctx, 'w', []);
        const bazel = { toolName: 'bazel', toolInvocationId: 'inv-1', correlatedInvocationsId: 'build-9' };
        const a = await s.submit(ctx, actionRequest('a', { clientMetadata: bazel }));
        const b = await s.submit(
          ctx,
          actionRequest('b', { clientMetadata: { toolName: 'bst', toolInvocationId: 'inv-2' } }),
        );
        const c = await s.submit(ctx, actionRequest('c'));
        assert.deepEqual(await takeNames('w', 1), [a.name]);
        const names = async (query: Parameters<Scheduler['list']>[1]) =>
          (await s.operations(ctx, query ?? {})).operations.map((o) => o.name);
        assert.deepEqual(await names({ stage: 'EXECUTING' }), [a.name]);
        assert.deepEqual(new Set(await names({ stage: 'QUEUED' })), new Set([b.name, c.name]));
        assert.deepEqual(await names({ invocationId: 'inv-1' }), [a.name]);
        assert.deepEqual(
          await names({ invocationId: 'build-9' }),
          [a.name],
          'the correlated invocations id counts too',
        );
        assert.deepEqual(await names({ toolName: 'bst' }), [b.name]);
        assert.deepEqual(await names({ workerId: 'w' }), [a.name]);
        assert.deepEqual(await names({ toolName: 'bazel', stage: 'QUEUED' }), []);
        assert.deepEqual((await s.get(ctx, a.name))?.request.clientMetadata, bazel, 'the client metadata is kept');
      });

      it('gives every change of an operation a higher version', async () => {
        await s.heartbeat(ctx, 'w', []);
        const op = await s.submit(ctx, actionRequest(1));
        await s.take(ctx, 'w', 1);
        const executing = await s.get(ctx, op.name);
        await s.complete(ctx, 'w', op.name, successResponse());
        const completed = await s.get(ctx, op.name);
        assert.ok((executing?.version ?? 0) > op.version);
        assert.ok((completed?.version ?? 0) > (executing?.version ?? 0));
      });
    });

    describe('operators', () => {
      it('shows workers with what they offer and the leases they hold', async () => {
        await s.heartbeat(ctx, 'w1', props(['pool', 'a']), { botId: 'host-1', slots: 2 });
        await s.heartbeat(ctx, 'w2', []);
        const op = await s.submit(ctx, actionRequest(1));
        await s.take(ctx, 'w1', 2);
        const workers = await s.workers(ctx);
        assert.deepEqual(
          workers.map((w) => w.id),
          ['w1', 'w2'],
        );
        const [w1, w2] = workers;
        assert.equal(w1?.botId, 'host-1');
        assert.equal(w1?.slots, 2);
        assert.deepEqual(w1?.properties, props(['pool', 'a']));
        assert.deepEqual(
          w1?.leases.map((l) => l.name),
          [op.name],
        );
        assert.deepEqual(w2?.leases, []);
        assert.equal(w1?.draining, false);
        assert.equal(typeof w1?.lastSeenMs, 'number');
        assert.deepEqual(await s.leaseOf(ctx, 'w1', op.name).then((l) => l?.name), op.name);
        assert.equal(await s.leaseOf(ctx, 'w2', op.name), undefined);
      });

      it('shows queues per platform with their depth and oldest waiting operation', async () => {
        await s.heartbeat(ctx, 'w', []);
        const first = await s.submit(ctx, actionRequest(1, { platform: props(['pool', 'a']) }));
        await s.submit(ctx, actionRequest(2, { platform: props(['pool', 'a']) }));
        await s.submit(ctx, actionRequest(3, { platform: props(['OSFamily', 'Linux'], ['ISA', 'amd64']) }));
        await s.submit(ctx, actionRequest(4, { platform: props(['ISA', 'x86_64'], ['OSFamily', 'linux']) }));
        const running = await s.submit(ctx, actionRequest(5));
        assert.deepEqual(await takeNames('w', 1), [running.name]);
        const queues = await s.queues(ctx);
        const byKey = new Map(queues.map((q) => [q.queueKey, q]));
        assert.equal(queues.length, 3, `one queue per kind of worker: ${[...byKey.keys()].join(' | ')}`);
        const poolA = byKey.get('pool=a');
        assert.equal(poolA?.queued, 2);
        assert.equal(poolA?.oldestQueuedAtMs, first.queuedAtMs);
        const linux = queues.find((q) => q.queueKey.includes('OSFamily'));
        assert.equal(linux?.queued, 2, 'spellings of one platform share a queue');
        assert.equal(byKey.get('(any)')?.executing, 1);
        assert.equal(byKey.get('(any)')?.queued, 0);
      });

      it('gives a draining worker nothing new while it finishes what it holds, until undrained', async () => {
        await s.heartbeat(ctx, 'w', []);
        const held = await s.submit(ctx, actionRequest(1));
        await s.take(ctx, 'w', 1);
        const waiting = await s.submit(ctx, actionRequest(2));
        assert.equal(await s.drainWorker(ctx, 'w'), true);
        assert.deepEqual(await s.take(ctx, 'w', 10), []);
        await s.heartbeat(ctx, 'w', []);
        assert.deepEqual(await s.take(ctx, 'w', 10), [], 'a heartbeat keeps the mark');
        assert.equal((await s.workers(ctx))[0]?.draining, true);
        await s.complete(ctx, 'w', held.name, successResponse());
        assert.equal(await stageOf(held.name), 'COMPLETED', 'what it held finishes normally');
        assert.equal(await s.couldRun(ctx, []), false, 'a draining worker runs nothing new');
        assert.equal(await s.drainWorker(ctx, 'w', false), true);
        assert.deepEqual(await takeNames('w', 10), [waiting.name]);
        assert.equal(await s.drainWorker(ctx, 'unknown'), false);
      });
    });
  });
}
