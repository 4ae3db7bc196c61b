import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { RequestMetadata } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code, StatusError } from '../util/status.js';
import { ANONYMOUS_PRINCIPAL } from './authentication.js';
import { contextForCall, deadlineMsOf } from './callContext.js';
import { REQUEST_METADATA_HEADER } from './requestMetadata.js';

/** A stand-in for a grpc-js server call: metadata, a deadline and the 'cancelled' event. */
class FakeCall extends EventEmitter {
  cancelled = false;
  constructor(
    readonly metadata = new Metadata(),
    private readonly deadline: Date | number = Number.POSITIVE_INFINITY,
  ) {
    super();
  }
  getDeadline(): Date | number {
    return this.deadline;
  }
  getPeer(): string {
    return '10.0.0.5:51234';
  }
  cancel(): void {
    this.cancelled = true;
    this.emit('cancelled');
  }
}

function reasonCode(signal: AbortSignal): Code | undefined {
  return signal.reason instanceof StatusError ? signal.reason.code : undefined;
}

describe('contextForCall', () => {
  it('carries the instance name and principal it was given, the peer, and no deadline when the client set none', () => {
    const { context, dispose } = contextForCall(new FakeCall(), 'ci/linux', ANONYMOUS_PRINCIPAL);
    assert.equal(context.instanceName, 'ci/linux');
    assert.equal(context.principal, ANONYMOUS_PRINCIPAL);
    assert.equal(context.peer, '10.0.0.5:51234');
    assert.equal(context.deadlineMs, undefined);
    assert.equal(context.signal.aborted, false);
    dispose();
  });

  it('aborts with CANCELLED when the client cancels', () => {
    const call = new FakeCall();
    const { context, dispose } = contextForCall(call, '', ANONYMOUS_PRINCIPAL);
    call.cancel();
    assert.equal(context.signal.aborted, true);
    assert.equal(reasonCode(context.signal), Code.CANCELLED);
    dispose();
  });

  it('is aborted from the start when the call was already cancelled', () => {
    const call = new FakeCall();
    call.cancelled = true;
    const { context, dispose } = contextForCall(call, '', ANONYMOUS_PRINCIPAL);
    assert.equal(context.signal.aborted, true);
    dispose();
  });

  it('reports the deadline in epoch milliseconds and aborts with DEADLINE_EXCEEDED when it passes', async () => {
    const deadline = new Date(Date.now() + 30);
    const { context, dispose } = contextForCall(new FakeCall(new Metadata(), deadline), '', ANONYMOUS_PRINCIPAL);
    assert.equal(context.deadlineMs, deadline.getTime());
    // The context's deadline timer is unref'd, so a ref'd one keeps the test's event loop alive meanwhile.
    const keepAlive = setTimeout(() => undefined, 5_000);
    await new Promise((resolve) => context.signal.addEventListener('abort', resolve, { once: true }));
    clearTimeout(keepAlive);
    assert.equal(reasonCode(context.signal), Code.DEADLINE_EXCEEDED);
    dispose();
  });

  it('reports a cancellation at the deadline (grpc-js ending the call first) as DEADLINE_EXCEEDED', () => {
    const call = new FakeCall(new Metadata(), Date.now() - 1);
    const now = Date.now() - 60_000; // as if built a minute ago, so its own timer has not fired yet
    const { context, dispose } = contextForCall(call, '', ANONYMOUS_PRINCIPAL, now);
    call.cancel();
    assert.equal(reasonCode(context.signal), Code.DEADLINE_EXCEEDED);
    dispose();
  });

  it('stops listening to the call once disposed', () => {
    const call = new FakeCall(new Metadata(), Date.now() + 60_000);
    const { context, dispose } = contextForCall(call, '', ANONYMOUS_PRINCIPAL);
    dispose();
    assert.equal(call.listenerCount('cancelled'), 0);
    call.cancel();
    assert.equal(context.signal.aborted, false);
  });

  it('does not arm a timer for a deadline beyond what setTimeout can hold', () => {
    const deadlineMs = Date.now() + 100 * 24 * 3600 * 1000;
    const { context, dispose } = contextForCall(new FakeCall(new Metadata(), deadlineMs), '', ANONYMOUS_PRINCIPAL);
    assert.equal(context.deadlineMs, deadlineMs);
    assert.equal(context.signal.aborted, false);
    dispose();
  });

  it('reports a call that ended before the handler finished, whether or not the handler read its signal', () => {
    const cancelledCall = new FakeCall();
    const unread = contextForCall(cancelledCall, '', ANONYMOUS_PRINCIPAL);
    unread.throwIfEnded();
    cancelledCall.cancel();
    assert.throws(
      () => unread.throwIfEnded(),
      (error: unknown) => (error as StatusError).code === Code.CANCELLED,
    );
    unread.dispose();

    const readCall = new FakeCall();
    const read = contextForCall(readCall, '', ANONYMOUS_PRINCIPAL);
    assert.equal(read.context.signal.aborted, false);
    readCall.cancel();
    assert.equal(reasonCode(read.context.signal), Code.CANCELLED);
    assert.throws(
      () => read.throwIfEnded(),
      (error: unknown) => (error as StatusError).code === Code.CANCELLED,
    );
    read.dispose();
    assert.equal(readCall.listenerCount('cancelled'), 0);

    const late = contextForCall(new FakeCall(new Metadata(), Date.now() - 1), '', ANONYMOUS_PRINCIPAL);
    assert.throws(
      () => late.throwIfEnded(),
      (error: unknown) => (error as StatusError).code === Code.DEADLINE_EXCEEDED,
    );
    late.dispose();
  });

  it('listens to the call only once its signal is read', () => {
    const call = new FakeCall(new Metadata(), Date.now() + 60_000);
    const { context, dispose } = contextForCall(call, '', ANONYMOUS_PRINCIPAL);
    assert.equal(call.listenerCount('cancelled'), 0);
    assert.equal(context.signal, context.signal);
    assert.equal(call.listenerCount('cancelled'), 1);
    dispose();
    assert.equal(call.listenerCount('cancelled'), 0);
  });

  it('reads the client metadata from the requestmetadata-bin header', () => {
    const metadata = new Metadata();
    const header = RequestMetadata.encode({
      toolDetails: { toolName: 'bazel', toolVersion: '4.2.3' },
      actionId: 'a1',
      toolInvocationId: 'inv',
      correlatedInvocationsId: 'build-7',
      actionMnemonic: 'CppCompile',
      targetId: '//app:main',
      configurationId: 'k8-fastbuild',
    }).finish();
    metadata.set(REQUEST_METADATA_HEADER, Buffer.from(header));
    const { context, dispose } = contextForCall(new FakeCall(metadata), '', ANONYMOUS_PRINCIPAL);
    assert.deepEqual(context.metadata, {
      toolName: 'bazel',
      toolVersion: '4.2.3',
      actionId: 'a1',
      toolInvocationId: 'inv',
      correlatedInvocationsId: 'build-7',
      actionMnemonic: 'CppCompile',
      targetId: '//app:main',
      configurationId: 'k8-fastbuild',
    });
    dispose();
  });
});

describe('deadlineMsOf', () => {
  it('maps grpc-js deadlines (Date, epoch milliseconds, Infinity) to epoch milliseconds or undefined', () => {
    assert.equal(deadlineMsOf(new Date(1234)), 1234);
    assert.equal(deadlineMsOf(5678), 5678);
    assert.equal(deadlineMsOf(Number.POSITIVE_INFINITY), undefined);
  });
});
