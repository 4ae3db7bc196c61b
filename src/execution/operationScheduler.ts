/**
 * The scheduler: the state machine of operations (queued, executing, completed;
 * requeued when a worker is lost; cancelled) over an OperationStore that keeps the
 * state and applies the SchedulingPolicy, and a Notifier that wakes watchers and
 * idle workers. This class holds no operation state of its own beyond who
 * watches what here, so several of it (several frontends) can share one store.
 * A sweeper expires the leases of silent workers and forgets old results.
 */
import type { RequestContext } from '../context/requestContext.js';
import { backgroundContext } from '../context/requestContext.js';
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code, notFound } from '../util/status.js';
import type { Notifier, OperationChange } from './notifier.js';
import type { OperationPage, OperationQuery, OperationStore, PlatformQueue } from './operationStore.js';
import type { Scheduler, WorkerView } from './scheduler.js';
import { errorResponse, type SchedulingPolicy } from './schedulingPolicy.js';
import type { ActionRequest, Assignment, OperationRecord, PlatformProperty, WorkerDetails } from './types.js';

/** Wait before reading again a changed operation whose first read failed. */
const REREAD_RETRY_MS = 1000;

export interface OperationSchedulerOptions {
  store: OperationStore;
  notifier: Notifier;
  policy: SchedulingPolicy;
  /** A worker silent for this long loses its leases. */
  workerTimeoutMs?: number;
  /** Completed operations are forgotten after this long (unless watched here). */
  completedRetentionMs?: number;
  now?: () => number;
  /** Told once about every operation that completes here (for logs and metrics); must not throw. */
  onCompleted?: (operation: OperationRecord) => void;
}

export class OperationScheduler implements Scheduler {
  readonly policy: SchedulingPolicy;
  private readonly store: OperationStore;
  private readonly notifier: Notifier;
  /** Operations watched through this scheduler, and how many watch each; they are not forgotten meanwhile. */
  private readonly watchers = new Map<string, number>();
  private readonly now: () => number;
  private readonly startedAtMs: number;
  private readonly workerTimeoutMs: number;
  private readonly completedRetentionMs: number;
  private readonly sweeper: NodeJS.Timeout;
  private sweeping: Promise<void> | undefined;
  private readonly onCompleted: ((operation: OperationRecord) => void) | undefined;

  constructor(options: OperationSchedulerOptions) {
    this.store = options.store;
    this.notifier = options.notifier;
    this.policy = options.policy;
    this.now = options.now ?? Date.now;
    this.startedAtMs = this.now();
    this.workerTimeoutMs = options.workerTimeoutMs ?? 30_000;
    this.completedRetentionMs = options.completedRetentionMs ?? 60 * 60_000;
    this.onCompleted = options.onCompleted;
    // Sweep often enough that a short worker timeout is enforced close to on time.
    const sweepMs = Math.min(1000, Math.max(10, this.workerTimeoutMs / 2));
    this.sweeper = setInterval(() => {
      this.sweeping ??= this.sweep()
        .catch((error: unknown) => console.error('granary: scheduler sweep failed:', error))
        .finally(() => {
          this.sweeping = undefined;
        });
    }, sweepMs);
    this.sweeper.unref();
  }

  // ---- clients ----

  async submit(context: RequestContext, request: ActionRequest): Promise<OperationRecord> {
    const { operation, created } = await this.store.enqueue(context, request, this.now());
    if (created) {
      this.published(operation);
      this.notifier.publishWork();
    }
    return operation;
  }

  async recordCompleted(
    context: RequestContext,
    request: ActionRequest,
    response: ExecuteResponse,
  ): Promise<OperationRecord> {
    const operation = await this.store.insertCompleted(context, request, response, this.now());
    this.published(operation);
    return operation;
  }

  get(context: RequestContext, name: string): Promise<OperationRecord | undefined> {
    return this.store.get(context, name);
  }

  list(context: RequestContext, query: OperationQuery = {}): Promise<OperationPage> {
    return this.store.list(context, query);
  }

  async watch(
    context: RequestContext,
    name: string,
    onChange: (operation: OperationRecord) => void,
  ): Promise<() => void> {
    // Subscribe before reading, so no change falls between; versions drop old or repeated news.
    let delivered = -1;
    let ready = false;
    const early: OperationChange[] = [];
    const deliver = (operation: OperationRecord) => {
      if (operation.version <= delivered) return;
      delivered = operation.version;
      onChange(operation);
    };
    let stopped = false;
    // News without the record (from another frontend) is read from the store; a read that
    // fails (the database is restarting) is tried again, or the news would be lost.
    const reread = () =>
      void this.store.get(context, name).then(
        (operation) => operation && deliver(operation),
        () => {
          if (!stopped && !context.signal.aborted) setTimeout(reread, REREAD_RETRY_MS).unref();
        },
      );
    const onNews = (change: OperationChange) => {
      if (!ready) {
        early.push(change);
        return;
      }
      if (change.version <= delivered) return;
      if (change.operation) deliver(change.operation);
      else reread();
    };
    const unsubscribe = this.notifier.subscribeOperation(name, onNews);
    const current = await this.store.get(context, name).catch((error: unknown) => {
      unsubscribe();
      throw error;
    });
    if (!current) {
      unsubscribe();
      throw notFound(`operation ${name} not found`);
    }
    this.watchers.set(name, (this.watchers.get(name) ?? 0) + 1);
    deliver(current);
    ready = true;
    for (const change of early) onNews(change);
    return () => {
      if (stopped) return;
      stopped = true;
      unsubscribe();
      const count = (this.watchers.get(name) ?? 1) - 1;
      if (count > 0) this.watchers.set(name, count);
      else this.watchers.delete(name);
    };
  }

  async cancel(context: RequestContext, name: string): Promise<boolean> {
    const before = await this.store.get(context, name);
    if (!before) return false;
    const cancelled = await this.store.complete(
      context,
      name,
      errorResponse(Code.CANCELLED, 'the operation was cancelled'),
      undefined,
      this.now(),
    );
    if (cancelled) {
      this.published(cancelled);
      // Wake long-polling bots so the worker running it hears at once that it should stop.
      if (before.stage === 'EXECUTING') this.notifier.publishWork();
    }
    return true;
  }

  async delete(context: RequestContext, name: string): Promise<boolean> {
    const ended = await this.store.complete(
      context,
      name,
      errorResponse(Code.CANCELLED, 'the operation was deleted'),
      undefined,
      this.now(),
    );
    if (ended) {
      this.published(ended);
      this.notifier.publishWork();
    }
    return (await this.store.delete(context, name)) !== undefined;
  }

  async couldRun(context: RequestContext, platform: readonly PlatformProperty[]): Promise<boolean> {
    this.policy.matcher.validate(platform);
    const workers = await this.store.listWorkers(context);
    return this.policy.couldRun(workers, platform, this.now(), this.startedAtMs);
  }

  // ---- workers ----

  async heartbeat(
    context: RequestContext,
    workerId: string,
    properties: readonly PlatformProperty[],
    details: WorkerDetails = {},
  ): Promise<void> {
    const nowMs = this.now();
    await this.store.putWorker(
      context,
      { id: workerId, properties: [...properties], lastSeenMs: nowMs, ...details },
      nowMs,
    );
  }

  async take(context: RequestContext, workerId: string, maximum: number): Promise<Assignment[]> {
    const claimed = await this.store.claim(context, workerId, maximum, this.now());
    for (const operation of claimed) this.published(operation);
    return claimed.map((operation) => ({ operationName: operation.name, request: operation.request }));
  }

  waitForWork(context: RequestContext, timeoutMs: number): Promise<void> {
    return this.notifier.waitForWork(timeoutMs, context.signal);
  }

  async leaseOf(
    context: RequestContext,
    workerId: string,
    operationName: string,
  ): Promise<OperationRecord | undefined> {
    const operation = await this.store.get(context, operationName);
    return operation?.stage === 'EXECUTING' && operation.workerId === workerId ? operation : undefined;
  }

  async complete(
    context: RequestContext,
    workerId: string,
    operationName: string,
    response: ExecuteResponse,
  ): Promise<void> {
    const completed = await this.store.complete(context, operationName, response, workerId, this.now());
    if (completed) this.published(completed);
  }

  async release(context: RequestContext, workerId: string, operationName: string): Promise<void> {
    const requeued = await this.store.requeue(context, operationName, workerId, false, this.now());
    if (requeued) this.requeued([requeued]);
  }

  async shouldAbandon(context: RequestContext, workerId: string, operationName: string): Promise<boolean> {
    return (await this.leaseOf(context, workerId, operationName)) === undefined;
  }

  async removeWorker(context: RequestContext, workerId: string): Promise<void> {
    // The record stays until the sweeper forgets it, so that couldRun() still counts
    // a worker that is reconnecting; it no longer takes work under this id.
    const nowMs = this.now();
    this.requeued(await this.store.requeueWorker(context, workerId, nowMs));
    await this.store.markWorkerGone(context, workerId, nowMs);
  }

  // ---- operators ----

  async workers(context: RequestContext): Promise<WorkerView[]> {
    const workers = await this.store.listWorkers(context);
    const { operations } = await this.store.list(context, { stage: 'EXECUTING' });
    return workers
      .map((worker) => ({ ...worker, leases: operations.filter((operation) => operation.workerId === worker.id) }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  queues(context: RequestContext): Promise<PlatformQueue[]> {
    return this.store.queues(context);
  }

  operations(context: RequestContext, query: OperationQuery): Promise<OperationPage> {
    return this.store.list(context, query);
  }

  async drainWorker(context: RequestContext, workerId: string, draining = true): Promise<boolean> {
    return this.store.setDraining(context, workerId, draining);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.sweeping;
    this.notifier.close();
    await this.store.close();
  }

  // ---- internals ----

  private published(operation: OperationRecord): void {
    this.notifier.publishOperation({ name: operation.name, version: operation.version, operation });
    // Every store step that completes an operation returns it once, so this hears of each completion once.
    if (operation.stage === 'COMPLETED' && this.onCompleted) {
      try {
        this.onCompleted(operation);
      } catch {
        // An observer's failure must not change the operation.
      }
    }
  }

  private requeued(operations: readonly OperationRecord[]): void {
    for (const operation of operations) this.published(operation);
    if (operations.some((operation) => operation.stage === 'QUEUED')) this.notifier.publishWork();
  }

  private async sweep(): Promise<void> {
    const context = backgroundContext();
    const nowMs = this.now();
    this.requeued(
      await this.store.expireLeases(
        context,
        nowMs - this.workerTimeoutMs,
        nowMs - Math.max(this.workerTimeoutMs, this.policy.workerMemoryMs),
        nowMs,
      ),
    );
    await this.store.forgetCompleted(context, nowMs - this.completedRetentionMs, new Set(this.watchers.keys()));
    await this.failUnrunnable(context, nowMs);
  }

  /**
   * Fails queued actions that no worker could run any more (the workers that
   * could are gone and none came back within the policy's grace), saying why,
   * instead of leaving their clients waiting for a worker that will not come.
   */
  private async failUnrunnable(context: RequestContext, nowMs: number): Promise<void> {
    const queues = (await this.store.queues(context)).filter((queue) => queue.queued > 0);
    if (queues.length === 0) return;
    const workers = await this.store.listWorkers(context);
    const hopeless = queues.filter((queue) => !this.policy.couldRun(workers, queue.platform, nowMs, this.startedAtMs));
    if (hopeless.length === 0) return;
    const keys = new Set(hopeless.map((queue) => queue.queueKey));
    const { operations } = await this.store.list(context, { stage: 'QUEUED' });
    for (const operation of operations) {
      if (!keys.has(this.policy.matcher.queueKey(operation.request.platform))) continue;
      const why = this.policy.whyNoWorker(workers, operation.request.platform, nowMs);
      const failed = await this.store.complete(
        context,
        operation.name,
        errorResponse(Code.FAILED_PRECONDITION, why),
        undefined,
        nowMs,
      );
      if (failed) this.published(failed);
    }
  }
}
