import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BuildEvent as BazelEvent, TestStatus } from '../gen/build_event_stream/build_event_stream.js';
import type { BuildEvent as EnvelopeEvent } from '../gen/google/devtools/build/v1/build_events.js';
import { recordBuildEvent } from './bazelEvents.js';
import { InvocationStore } from './invocationStore.js';

const STREAM = { buildId: 'build-1', invocationId: 'inv-1', component: 3 };

function packed(event: Partial<BazelEvent>): EnvelopeEvent {
  return {
    eventTime: undefined,
    bazelEvent: {
      typeUrl: 'type.googleapis.com/build_event_stream.BuildEvent',
      value: Buffer.from(BazelEvent.encode(BazelEvent.fromPartial(event)).finish()),
    },
  } as EnvelopeEvent;
}

describe('reading Bazel build events into invocations', () => {
  it('keeps the command, patterns, command line, targets, tests and exit code of an invocation', () => {
    const store = new InvocationStore();
    const events: Partial<BazelEvent>[] = [
      { id: { started: {} }, started: { command: 'test', buildToolVersion: '4.2.3', startTimeMillis: 1000 } as never },
      { id: { unstructuredCommandLine: {} }, unstructuredCommandLine: { args: ['test', '//...'] } },
      { id: { pattern: { pattern: ['//...'] } } },
      { id: { targetConfigured: { label: '//:hello_test', aspect: '' } }, configured: { targetKind: 'sh_test rule' } },
      {
        id: { targetCompleted: { label: '//:hello_test', aspect: '', configuration: undefined } },
        completed: { success: true },
      },
      {
        id: { testResult: { label: '//:hello_test', run: 1, shard: 1, attempt: 1, configuration: undefined } },
        testResult: {
          status: TestStatus.PASSED,
          testAttemptDurationMillis: 250,
          cachedLocally: false,
          executionInfo: { cachedRemotely: true, hostname: 'embedded' },
        } as never,
      },
      {
        id: { testSummary: { label: '//:hello_test', configuration: undefined } },
        testSummary: { overallStatus: TestStatus.PASSED, totalRunCount: 1 } as never,
      },
      {
        id: { buildFinished: {} },
        finished: { exitCode: { name: 'SUCCESS', code: 0 }, finishTimeMillis: 5000 } as never,
      },
    ];
    for (const event of events) recordBuildEvent(store, STREAM, packed(event));

    const invocation = store.get('inv-1');
    assert.ok(invocation);
    assert.equal(invocation.command, 'test');
    assert.equal(invocation.toolVersion, '4.2.3');
    assert.deepEqual(invocation.patterns, ['//...']);
    assert.deepEqual(invocation.commandLine, ['test', '//...']);
    assert.deepEqual(
      [...invocation.targets.values()],
      [{ label: '//:hello_test', kind: 'sh_test rule', success: true }],
    );
    const test = invocation.tests.get('//:hello_test');
    assert.equal(test?.status, 'PASSED');
    assert.equal(test?.attempts, 1);
    assert.equal(test?.cachedAttempts, 1);
    assert.equal(test?.durationMs, 250);
    assert.equal(test?.hostname, 'embedded');
    assert.deepEqual(invocation.exitCode, { name: 'SUCCESS', code: 0 });
    assert.equal(invocation.startedAtMs, 1000);
    assert.equal(invocation.finishedAtMs, 5000);
    assert.equal(invocation.eventCount, events.length);
  });

  it('ignores events of other types and events without an invocation id', () => {
    const store = new InvocationStore();
    recordBuildEvent(store, STREAM, {
      eventTime: undefined,
      bazelEvent: { typeUrl: 'type.googleapis.com/other.Event', value: Buffer.from([0xff, 0xff]) },
    } as EnvelopeEvent);
    recordBuildEvent(store, { ...STREAM, invocationId: '' }, packed({ id: { started: {} } }));
    assert.equal(store.get('inv-1')?.command, undefined);
    assert.equal(store.list().length, 1);
  });

  it('throws on a Bazel event that does not decode', () => {
    const store = new InvocationStore();
    assert.throws(() =>
      recordBuildEvent(store, STREAM, {
        eventTime: undefined,
        bazelEvent: { typeUrl: 'type.googleapis.com/build_event_stream.BuildEvent', value: Buffer.from([0x0a, 0xff]) },
      } as EnvelopeEvent),
    );
  });

  it('keeps at most the configured number of invocations, dropping the least recently active', () => {
    const store = new InvocationStore({ maximumInvocations: 2 });
    for (const id of ['a', 'b', 'c']) store.touch(id, '');
    store.touch('b', '');
    store.touch('d', '');
    assert.deepEqual(
      store.list().map((i) => i.id),
      ['d', 'b'],
    );
  });

  it('stops adding targets past the per-invocation bound and says the invocation was cut', () => {
    const store = new InvocationStore({ maximumEntriesPerInvocation: 2 });
    const invocation = store.touch('big', '');
    for (const label of ['//:a', '//:b', '//:c']) store.target(invocation, label);
    assert.deepEqual([...invocation.targets.keys()], ['//:a', '//:b']);
    assert.equal(invocation.truncated, true);
  });
});
