/**
 * A WorkerQueue decorator that records each finished action (fills the action
 * cache) before the scheduler completes the operation, so a client that sees
 * COMPLETED and executes the action again gets the cached result. Until then the
 * operation stays in flight, so identical submissions still join it. A recording
 * that fails is logged and the operation completes all the same.
 */
import type { RequestContext } from '../context/requestContext.js';
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { CompletionRecorder } from './actionResultRecorder.js';
import type { WorkerQueue } from './scheduler.js';
import type { Assignment, OperationRecord, PlatformProperty, WorkerDetails } from './types.js';

export class RecordingWorkerQueue implements WorkerQueue {
  constructor(
    private readonly inner: WorkerQueue,
    private readonly recorder: CompletionRecorder,
    private readonly log: (message: string, error: unknown) => void = (message, error) => console.error(message, error),
  ) {}

  async complete(
    context: RequestContext,
    workerId: string,
    operationName: string,
    response: ExecuteResponse,
  ): Promise<void> {
    const operation = await this.inner.leaseOf(context, workerId, operationName);
    if (!operation) return; // Not this worker's (any more): nothing to record.
    try {
      await this.recorder.record(context, { ...operation, stage: 'COMPLETED', response });
    } catch (error) {
      this.log(`granary: recording the result of ${operationName} failed:`, error);
    }
    // Cancelled or lost meanwhile: the scheduler keeps that outcome.
    await this.inner.complete(context, workerId, operationName, response);
  }

  heartbeat(
    context: RequestContext,
    workerId: string,
    properties: readonly PlatformProperty[],
    details?: WorkerDetails,
  ): Promise<void> {
    return this.inner.heartbeat(context, workerId, properties, details);
  }

  take(context: RequestContext, workerId: string, maximum: number): Promise<Assignment[]> {
    return this.inner.take(context, workerId, maximum);
  }

  waitForWork(context: RequestContext, timeoutMs: number): Promise<void> {
    return this.inner.waitForWork(context, timeoutMs);
  }

  leaseOf(context: RequestContext, workerId: string, operationName: string): Promise<OperationRecord | undefined> {
    return this.inner.leaseOf(context, workerId, operationName);
  }

  release(context: RequestContext, workerId: string, operationName: string): Promise<void> {
    return this.inner.release(context, workerId, operationName);
  }

  shouldAbandon(context: RequestContext, workerId: string, operationName: string): Promise<boolean> {
    return this.inner.shouldAbandon(context, workerId, operationName);
  }

  removeWorker(context: RequestContext, workerId: string): Promise<void> {
    return this.inner.removeWorker(context, workerId);
  }
}
