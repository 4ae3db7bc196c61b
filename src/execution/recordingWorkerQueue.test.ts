/**
 * Tests of the decorator that fills the action cache before an operation
 * completes: nobody hears COMPLETED before the result is recorded, identical
 * submissions still join meanwhile, and a failed recording or a cancellation
 * meanwhile is handled.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { actionRequest, successResponse } from '../../test/support/schedulerContract.js';
import { quietly } from '../../test/support/waiting.js';
import { backgroundContext } from '../context/requestContext.js';
import { Code } from '../util/status.js';
import type { CompletionRecorder } from './actionResultRecorder.js';
import { openScheduler } from './openScheduler.js';
import type { OperationScheduler } from './operationScheduler.js';
import { RecordingWorkerQueue } from './recordingWorkerQueue.js';
import type { OperationRecord } from './types.js';

const ctx = backgroundContext();

const opened: OperationScheduler[] = [];
afterEach(async () => {
  for (const scheduler of opened.splice(0)) await scheduler.close();
});

/** A scheduler and, over it, the recording queue its workers report to. */
async function recording(
  recorder: CompletionRecorder,
): Promise<RecordingWorkerQueue & { scheduler: OperationScheduler }> {
  const scheduler = await openScheduler();
  opened.push(scheduler);
  return Object.assign(new RecordingWorkerQueue(scheduler, recorder), { scheduler });
}

describe('RecordingWorkerQueue', () => {
  it('fills the action cache before watchers see COMPLETED, and identical submissions join meanwhile', async () => {
    const seenByWatcher: string[] = [];
    let joined: OperationRecord | undefined;
    let scheduler!: OperationScheduler;
    const queue = await recording({
      record: async (_context, operation) => {
        assert.equal(operation.stage, 'COMPLETED');
        assert.equal(operation.response?.result?.exitCode, 0);
        assert.ok(!seenByWatcher.includes('COMPLETED'), 'recorded before anyone is told');
        joined = await scheduler.submit(ctx, actionRequest(1, { clientKey: 'late' }));
      },
    });
    scheduler = queue.scheduler;
    await scheduler.heartbeat(ctx, 'w', []);
    const op = await scheduler.submit(ctx, actionRequest(1));
    await scheduler.watch(ctx, op.name, (r) => seenByWatcher.push(r.stage));
    await scheduler.take(ctx, 'w', 1);
    await queue.complete(ctx, 'w', op.name, successResponse());
    assert.equal(joined?.name, op.name);
    assert.deepEqual(seenByWatcher, ['QUEUED', 'EXECUTING', 'COMPLETED']);
  });

  it('completes the operation even when recording the result fails', async () => {
    const queue = await recording({
      record: async () => {
        throw new Error('action cache unavailable');
      },
    });
    const { scheduler } = queue;
    await scheduler.heartbeat(ctx, 'w', []);
    const op = await scheduler.submit(ctx, actionRequest(1));
    await scheduler.take(ctx, 'w', 1);
    await quietly(() => queue.complete(ctx, 'w', op.name, successResponse(3)));
    assert.equal((await scheduler.get(ctx, op.name))?.response?.result?.exitCode, 3);
  });

  it('keeps a cancellation that arrives while the result is being recorded', async () => {
    let release!: () => void;
    const recorded = new Promise<void>((resolve) => {
      release = resolve;
    });
    const queue = await recording({ record: () => recorded });
    const { scheduler } = queue;
    await scheduler.heartbeat(ctx, 'w', []);
    const op = await scheduler.submit(ctx, actionRequest(1));
    await scheduler.take(ctx, 'w', 1);
    const completing = queue.complete(ctx, 'w', op.name, successResponse());
    await scheduler.cancel(ctx, op.name);
    release();
    await completing;
    assert.equal((await scheduler.get(ctx, op.name))?.response?.status?.code, Code.CANCELLED);
  });

  it('records nothing for a completion from a worker that does not hold the operation', async () => {
    const recorded: string[] = [];
    const queue = await recording({ record: async (_context, operation) => void recorded.push(operation.name) });
    const { scheduler } = queue;
    await scheduler.heartbeat(ctx, 'w', []);
    await scheduler.heartbeat(ctx, 'other', []);
    const op = await scheduler.submit(ctx, actionRequest(1));
    await queue.take(ctx, 'w', 1);
    await queue.complete(ctx, 'other', op.name, successResponse());
    assert.deepEqual(recorded, []);
    assert.equal((await scheduler.get(ctx, op.name))?.stage, 'EXECUTING');
    await queue.complete(ctx, 'w', op.name, successResponse());
    assert.deepEqual(recorded, [op.name]);
  });
});
