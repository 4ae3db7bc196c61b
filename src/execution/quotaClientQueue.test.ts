import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { actionRequest, successResponse } from '../../test/support/schedulerContract.js';
import { until } from '../../test/support/waiting.js';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import { Code, StatusError } from '../util/status.js';
import { openScheduler } from './openScheduler.js';
import type { OperationScheduler } from './operationScheduler.js';
import { OPERATION_RETRY_DELAY_MS, QuotaClientQueue } from './quotaClientQueue.js';

const caller = (name: string): RequestContext => ({
  ...backgroundContext(),
  principal: { kind: 'token', name, scopes: new Set(['execute']), instances: ['*'] },
});
const ctx = backgroundContext();

async function refused(promise: Promise<unknown>): Promise<StatusError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof StatusError);
    assert.equal(error.code, Code.RESOURCE_EXHAUSTED);
    return error;
  }
  assert.fail('expected RESOURCE_EXHAUSTED');
}

describe('QuotaClientQueue', () => {
  let scheduler: OperationScheduler;
  beforeEach(async () => {
    scheduler = await openScheduler();
  });
  afterEach(async () => {
    await scheduler.close();
  });

  it('refuses a caller past its queued operations, with RetryInfo, and admits it again once one runs', async () => {
    const queue = new QuotaClientQueue(scheduler, { queued: 2 });
    const alice = caller('alice');
    await queue.submit(alice, actionRequest(1));
    await queue.submit(alice, actionRequest(2));
    const error = await refused(queue.submit(alice, actionRequest(3)));
    assert.match(error.message, /token alice has 2 operations waiting for a worker.*--quota-queued-operations 2/);
    assert.equal(error.details.retryDelayMs, OPERATION_RETRY_DELAY_MS);
    assert.equal(error.details.quotaFailure?.[0]?.subject, 'token:alice');
    // Another caller has its own quota.
    await queue.submit(caller('bob'), actionRequest(4));
    // One of alice's starts running: it no longer waits.
    await scheduler.heartbeat(ctx, 'worker', []);
    assert.equal((await scheduler.take(ctx, 'worker', 1)).length, 1);
    await until(
      () =>
        queue.submit(alice, actionRequest(3)).then(
          () => true,
          () => false,
        ),
      10_000,
    );
  });

  it('refuses a caller past its operations in flight until one completes', async () => {
    const queue = new QuotaClientQueue(scheduler, { concurrent: 1 });
    const alice = caller('alice');
    const first = await queue.submit(alice, actionRequest(1));
    await scheduler.heartbeat(ctx, 'worker', []);
    await scheduler.take(ctx, 'worker', 1);
    const error = await refused(queue.submit(alice, actionRequest(2)));
    assert.match(error.message, /1 operations in flight.*--quota-concurrent-operations 1/);
    await scheduler.complete(ctx, 'worker', first.name, successResponse());
    await until(
      () =>
        queue.submit(alice, actionRequest(2)).then(
          () => true,
          () => false,
        ),
      10_000,
    );
  });

  it('admits executing again an action in flight, and frees a slot whose operation was deleted', async () => {
    const queue = new QuotaClientQueue(scheduler, { concurrent: 1 }, (request) => scheduler.policy.dedupeKey(request));
    const alice = caller('alice');
    const first = await queue.submit(alice, actionRequest(1));
    const joined = await queue.submit(alice, actionRequest(1));
    assert.equal(joined.name, first.name);
    await refused(queue.submit(alice, actionRequest(2)));
    await scheduler.delete(ctx, first.name);
    await queue.submit(alice, actionRequest(2));
  });

  it('never limits the server itself', async () => {
    const queue = new QuotaClientQueue(scheduler, { concurrent: 1, queued: 1 });
    for (let i = 0; i < 5; i++) await queue.submit(ctx, actionRequest(i));
  });
});
