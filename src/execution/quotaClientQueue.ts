/**
 * A ClientQueue decorator that keeps each caller (see quota/caller.ts) within
 * its operation quotas: at most `concurrent` operations in flight (queued or
 * executing) and at most `queued` of them waiting for a worker. An Execute past
 * either is refused with RESOURCE_EXHAUSTED (QuotaFailure and RetryInfo
 * details) before anything is queued. Joining an identical operation already in
 * flight counts as one of the caller's operations too (the caller waits on it),
 * but executing again an action the caller already has in flight, as clients do
 * to resume, is always admitted: it is the same operation.
 *
 * Counts are kept by this server process for the operations submitted through
 * it since it started, following each through the scheduler's watch until it
 * completes; before refusing, the caller's operations are read again, so one
 * that ended unseen (deleted, forgotten) never holds a slot for good.
 */
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type QuotaCaller, quotaCallerOf } from '../quota/caller.js';
import { quotaExceeded } from '../util/status.js';
import type { OperationPage, OperationQuery } from './operationStore.js';
import type { ClientQueue } from './scheduler.js';
import type { ActionRequest, OperationRecord, PlatformProperty, Stage } from './types.js';

export interface OperationQuotas {
  /** Operations in flight (queued or executing) per caller. */
  concurrent?: number;
  /** Operations waiting for a worker per caller. */
  queued?: number;
}

/** What a refused caller is told to wait: operations take seconds at least, and nothing says which ends first. */
export const OPERATION_RETRY_DELAY_MS = 2000;

interface CallerOperations {
  /** Each operation in flight and its stage as last seen. */
  stages: Map<string, Stage>;
  /** The operation in flight for each dedupe key (see SchedulingPolicy.dedupeKey). */
  byKey: Map<string, string>;
  /** Submissions admitted but not yet answered by the scheduler. */
  pending: number;
}

export class QuotaClientQueue implements ClientQueue {
  private readonly callers = new Map<string, CallerOperations>();

  constructor(
    private readonly inner: ClientQueue,
    private readonly quotas: OperationQuotas,
    /** The key under which the scheduler makes identical actions one operation; none: never one. */
    private readonly dedupeKey: (request: ActionRequest) => string | undefined = () => undefined,
  ) {}

  async submit(context: RequestContext, request: ActionRequest): Promise<OperationRecord> {
    const caller = quotaCallerOf(context);
    if (!caller) return this.inner.submit(context, request);
    const operations = this.operationsOf(caller.key);
    const key = this.dedupeKey(request);
    const resubmitted = key !== undefined && operations.stages.has(operations.byKey.get(key) ?? '');
    if (!resubmitted && this.overQuota(operations)) {
      await this.refresh(context, operations);
      this.refuseIfOverQuota(caller, operations);
    }
    operations.pending++;
    let operation: OperationRecord;
    try {
      operation = await this.inner.submit(context, request);
    } finally {
      operations.pending--;
    }
    if (operation.stage !== 'COMPLETED' && !operations.stages.has(operation.name)) {
      operations.stages.set(operation.name, operation.stage);
      if (key !== undefined) operations.byKey.set(key, operation.name);
      void this.follow(caller.key, operations, operation.name, key);
    }
    return operation;
  }

  recordCompleted(
    context: RequestContext,
    request: ActionRequest,
    response: ExecuteResponse,
  ): Promise<OperationRecord> {
    return this.inner.recordCompleted(context, request, response);
  }

  get(context: RequestContext, name: string): Promise<OperationRecord | undefined> {
    return this.inner.get(context, name);
  }

  list(context: RequestContext, query?: OperationQuery): Promise<OperationPage> {
    return this.inner.list(context, query);
  }

  watch(context: RequestContext, name: string, onChange: (operation: OperationRecord) => void): Promise<() => void> {
    return this.inner.watch(context, name, onChange);
  }

  cancel(context: RequestContext, name: string): Promise<boolean> {
    return this.inner.cancel(context, name);
  }

  delete(context: RequestContext, name: string): Promise<boolean> {
    return this.inner.delete(context, name);
  }

  couldRun(context: RequestContext, platform: readonly PlatformProperty[]): Promise<boolean> {
    return this.inner.couldRun(context, platform);
  }

  private operationsOf(key: string): CallerOperations {
    let operations = this.callers.get(key);
    if (!operations) {
      operations = { stages: new Map(), byKey: new Map(), pending: 0 };
      this.callers.set(key, operations);
    }
    return operations;
  }

  private counts(operations: CallerOperations): { inFlight: number; queued: number } {
    let queued = operations.pending;
    for (const stage of operations.stages.values()) if (stage === 'QUEUED') queued++;
    return { inFlight: operations.stages.size + operations.pending, queued };
  }

  private overQuota(operations: CallerOperations): boolean {
    const { inFlight, queued } = this.counts(operations);
    return (
      (this.quotas.concurrent !== undefined && inFlight >= this.quotas.concurrent) ||
      (this.quotas.queued !== undefined && queued >= this.quotas.queued)
    );
  }

  private refuseIfOverQuota(caller: QuotaCaller, operations: CallerOperations): void {
    const { inFlight, queued } = this.counts(operations);
    const refuse = (what: string, limit: number, flag: string) =>
      quotaExceeded(
        `operation quota exceeded: ${caller.label} has ${what}, the most allowed (${flag} ${limit}); ` +
          'retry when one of them finishes',
        { subject: caller.key, description: `${flag.slice(2)} (${limit})` },
        OPERATION_RETRY_DELAY_MS,
      );
    if (this.quotas.concurrent !== undefined && inFlight >= this.quotas.concurrent) {
      throw refuse(`${inFlight} operations in flight`, this.quotas.concurrent, '--quota-concurrent-operations');
    }
    if (this.quotas.queued !== undefined && queued >= this.quotas.queued) {
      throw refuse(`${queued} operations waiting for a worker`, this.quotas.queued, '--quota-queued-operations');
    }
  }

  /** Reads the caller's operations again; drops those that completed or are gone. */
  private async refresh(context: RequestContext, operations: CallerOperations): Promise<void> {
    await Promise.all(
      [...operations.stages.keys()].map(async (name) => {
        const current = await this.inner.get(context, name);
        if (!current || current.stage === 'COMPLETED') operations.stages.delete(name);
        else if (operations.stages.has(name)) operations.stages.set(name, current.stage);
      }),
    );
  }

  /** Follows one operation until it completes, keeping its stage current. */
  private async follow(
    key: string,
    operations: CallerOperations,
    name: string,
    dedupeKey: string | undefined,
  ): Promise<void> {
    let completed = false;
    let stop: (() => void) | undefined;
    const finish = () => {
      completed = true;
      operations.stages.delete(name);
      if (dedupeKey !== undefined && operations.byKey.get(dedupeKey) === name) operations.byKey.delete(dedupeKey);
      stop?.();
      if (operations.stages.size === 0 && operations.pending === 0 && this.callers.get(key) === operations) {
        this.callers.delete(key);
      }
    };
    try {
      stop = await this.inner.watch(backgroundContext(), name, (operation) => {
        if (completed) return;
        if (operation.stage === 'COMPLETED') finish();
        else if (operations.stages.has(name)) operations.stages.set(name, operation.stage);
      });
      if (completed) stop();
    } catch {
      // The operation is gone already: it holds no slot.
      finish();
    }
  }
}
