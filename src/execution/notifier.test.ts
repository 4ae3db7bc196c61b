import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InProcessNotifier, type OperationChange } from './notifier.js';

const never = new AbortController().signal;

describe('InProcessNotifier', () => {
  it('delivers an operation’s changes to its subscribers only, until they unsubscribe', () => {
    const notifier = new InProcessNotifier();
    const seen: OperationChange[] = [];
    const other: OperationChange[] = [];
    const stop = notifier.subscribeOperation('operations/a', (c) => seen.push(c));
    notifier.subscribeOperation('operations/b', (c) => other.push(c));
    notifier.publishOperation({ name: 'operations/a', version: 2 });
    stop();
    notifier.publishOperation({ name: 'operations/a', version: 3 });
    assert.deepEqual(
      seen.map((c) => c.version),
      [2],
    );
    assert.deepEqual(other, []);
  });

  it('wakes every worker waiting for work, and each wait ends by timeout or abort otherwise', async () => {
    const notifier = new InProcessNotifier();
    const woken: number[] = [];
    const waits = [1, 2].map((i) => notifier.waitForWork(10_000, never).then(() => woken.push(i)));
    notifier.publishWork();
    await Promise.all(waits);
    assert.deepEqual(woken.sort(), [1, 2]);
    const started = Date.now();
    await notifier.waitForWork(20, never);
    const abort = new AbortController();
    const aborted = notifier.waitForWork(10_000, abort.signal);
    abort.abort();
    await aborted;
    assert.ok(Date.now() - started < 5_000);
  });

  it('wakes waiters at close and does not let anyone wait afterwards', async () => {
    const notifier = new InProcessNotifier();
    const waiting = notifier.waitForWork(10_000, never);
    notifier.close();
    await waiting;
    const started = Date.now();
    await notifier.waitForWork(10_000, never);
    assert.ok(Date.now() - started < 5_000);
  });
});
