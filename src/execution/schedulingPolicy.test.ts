import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { actionRequest } from '../../test/support/schedulerContract.js';
import { backgroundContext } from '../context/requestContext.js';
import { Code } from '../util/status.js';
import { fairnessKeyOf, type QueuePosition, SchedulingPolicy } from './schedulingPolicy.js';
import type { WorkerRecord } from './types.js';

const worker = (properties: Array<[string, string]> = [], extra: Partial<WorkerRecord> = {}): WorkerRecord => ({
  id: 'w',
  properties: properties.map(([name, value]) => ({ name, value })),
  lastSeenMs: 1_000,
  draining: false,
  ...extra,
});

const position = (overrides: Partial<QueuePosition> = {}): QueuePosition => ({
  priority: 0,
  fairSequence: 1,
  arrival: 0,
  platform: [],
  ...overrides,
});

describe('SchedulingPolicy', () => {
  const policy = new SchedulingPolicy();

  it('deduplicates by instance, digest function and action digest, never do_not_cache actions', () => {
    assert.equal(policy.dedupeKey(actionRequest(1)), policy.dedupeKey(actionRequest(1, { clientKey: 'other' })));
    assert.notEqual(policy.dedupeKey(actionRequest(1)), policy.dedupeKey(actionRequest(1, { instanceName: 'x' })));
    assert.notEqual(policy.dedupeKey(actionRequest(1)), policy.dedupeKey(actionRequest(1, { digestFunction: 6 })));
    assert.notEqual(policy.dedupeKey(actionRequest(1)), policy.dedupeKey(actionRequest(2)));
    assert.equal(policy.dedupeKey(actionRequest(1, { doNotCache: true })), undefined);
  });

  it('orders by priority, then preferred platform, then fair sequence, then arrival', () => {
    const preferring = new SchedulingPolicy({ platformMatch: { pool: 'priority' } });
    const fast = worker([['pool', 'fast']]);
    const sort = (positions: QueuePosition[], p = policy, w = worker()) =>
      [...positions].sort((a, b) => p.compare(w, a, b)).map((x) => x.arrival);
    assert.deepEqual(sort([position({ arrival: 0, priority: 1 }), position({ arrival: 1, priority: -1 })]), [1, 0]);
    assert.deepEqual(
      sort([position({ arrival: 0, fairSequence: 3 }), position({ arrival: 1, fairSequence: 2 })]),
      [1, 0],
    );
    assert.deepEqual(sort([position({ arrival: 1 }), position({ arrival: 0 })]), [0, 1]);
    const wantsSlow = position({ arrival: 0, platform: [{ name: 'pool', value: 'slow' }] });
    const wantsFast = position({ arrival: 1, fairSequence: 9, platform: [{ name: 'pool', value: 'fast' }] });
    assert.deepEqual(sort([wantsSlow, wantsFast], preferring, fast), [1, 0], 'a worker takes what prefers it first');
    assert.deepEqual(
      sort([wantsSlow, { ...wantsFast, priority: 1 }], preferring, fast),
      [0, 1],
      'but never before more urgent work',
    );
  });

  it('numbers a client’s submissions from the last one served, so a newcomer takes turns', () => {
    assert.equal(policy.nextFairSequence(undefined, 0), 1);
    assert.equal(policy.nextFairSequence(7, 3), 8);
    assert.equal(policy.nextFairSequence(2, 10), 11, 'an idle client starts from what was served, not its old number');
    assert.equal(policy.sharedPriority(5, -1), -1);
    assert.equal(policy.sharedPriority(-1, 5), -1);
  });

  it('requeues a lost action until the attempt limit, then gives up with UNAVAILABLE', () => {
    const limited = new SchedulingPolicy({ maximumAttempts: 2 });
    assert.deepEqual(limited.afterLostLease(1), { requeue: true });
    const outcome = limited.afterLostLease(2);
    assert.equal(outcome.requeue, false);
    assert.equal(outcome.requeue === false && outcome.response.status?.code, Code.UNAVAILABLE);
  });

  it('lets only a live, undrained worker that satisfies the platform take an action', () => {
    const linux: Array<[string, string]> = [['OSFamily', 'linux']];
    const platform = [{ name: 'OSFamily', value: 'Linux' }];
    assert.equal(policy.mayTake(worker(linux), platform), true);
    assert.equal(policy.mayTake(worker(linux, { draining: true }), platform), false);
    assert.equal(policy.mayTake(worker(linux, { goneAtMs: 5 }), platform), false);
    assert.equal(policy.mayTake(worker(), platform), false);
  });

  it('says an action could run when a recent undrained worker satisfies it, or during start-up with no worker', () => {
    const p = new SchedulingPolicy({ workerMemoryMs: 100, startupGraceMs: 50 });
    const gpu = worker([['gpu', 'yes']], { lastSeenMs: 1_000 });
    const wanted = [{ name: 'gpu', value: 'yes' }];
    assert.equal(p.couldRun([gpu], wanted, 1_050, 0), true);
    assert.equal(p.couldRun([gpu], wanted, 1_101, 0), false, 'a worker not seen for workerMemoryMs no longer counts');
    assert.equal(p.couldRun([{ ...gpu, draining: true }], wanted, 1_050, 0), false);
    assert.equal(
      p.couldRun([gpu], [{ name: 'gpu', value: 'no' }], 1_050, 1_040),
      false,
      'a live worker ends the grace',
    );
    assert.equal(p.couldRun([], wanted, 1_000, 990), true);
    assert.equal(p.couldRun([], wanted, 1_000, 900), false);
  });
});

describe('fairnessKeyOf', () => {
  const base = backgroundContext();

  it('shares by the build invocation from RequestMetadata, preferring the correlated id', () => {
    assert.equal(
      fairnessKeyOf({ ...base, metadata: { toolName: 'bazel', toolInvocationId: 'i', correlatedInvocationsId: 'c' } }),
      'bazel:c',
    );
    assert.equal(fairnessKeyOf({ ...base, metadata: { toolInvocationId: 'i' } }), 'client:i');
  });

  it('falls back to the connection, then the caller', () => {
    assert.equal(fairnessKeyOf({ ...base, peer: 'ipv4:10.0.0.1:4000' }), 'ipv4:10.0.0.1:4000');
    assert.equal(fairnessKeyOf(base), 'granary');
  });
});
