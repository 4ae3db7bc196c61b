/**
 * Where the scheduler's state lives: operations, the queue and the workers. Each
 * method is one atomic step, the kind a database does in one transaction (a
 * PostgreSQL store claims with `SELECT ... FOR UPDATE SKIP LOCKED`), so several
 * frontends sharing one store schedule as one. The store applies the
 * SchedulingPolicy it was built with (matching, order, fairness, deduplication,
 * attempt limits) and wakes nobody in its process: the scheduler publishes what
 * changed. (The PostgreSQL store does announce its changes to the other frontends,
 * with NOTIFY inside each transaction, so an announcement goes out exactly when a
 * change commits.)
 *
 * Implementations: MemoryOperationStore (one process), FileOperationStore (the
 * memory store saved to a file), PostgresOperationStore (several frontends); all
 * pass the scheduler contract suite.
 */
import type { RequestContext } from '../context/requestContext.js';
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { ActionRequest, OperationRecord, PlatformProperty, Stage, WorkerRecord } from './types.js';

/** Which operations a listing returns, and where a page starts. */
export interface OperationQuery {
  stage?: Stage;
  /** Matches the client's tool invocation id or correlated invocations id. */
  invocationId?: string;
  /** Matches the client's tool name (e.g. `bazel`). */
  toolName?: string;
  workerId?: string;
  /** At most this many operations (the store may cap it); all when absent. */
  pageSize?: number;
  /** The `nextPageToken` of the previous page. */
  pageToken?: string;
}

/** One page of operations, oldest first (by queue time, then name). */
export interface OperationPage {
  operations: OperationRecord[];
  /** Empty on the last page. */
  nextPageToken: string;
}

/** The actions waiting for one kind of worker. */
export interface PlatformQueue {
  /** The canonical restricting properties (PlatformMatcher.queueKey); `(any)` when none. */
  queueKey: string;
  platform: PlatformProperty[];
  queued: number;
  executing: number;
  /** Queue time of the operation waiting longest; undefined when none waits. */
  oldestQueuedAtMs?: number;
}

/** The outcome of enqueueing: the operation, and whether it is new or an identical one joined. */
export interface Enqueued {
  operation: OperationRecord;
  created: boolean;
}

export interface OperationStore {
  /**
   * Queues an action as a new operation, or returns the identical one in flight
   * (same dedupe key, not COMPLETED), raising its priority to the more urgent one.
   */
  enqueue(context: RequestContext, request: ActionRequest, nowMs: number): Promise<Enqueued>;
  /** Stores an operation that is COMPLETED from the start (an action cache hit); it takes no fair share. */
  insertCompleted(
    context: RequestContext,
    request: ActionRequest,
    response: ExecuteResponse,
    nowMs: number,
  ): Promise<OperationRecord>;
  get(context: RequestContext, name: string): Promise<OperationRecord | undefined>;
  /** Operations matching the query, a page at a time; INVALID_ARGUMENT for a token it did not issue. */
  list(context: RequestContext, query: OperationQuery): Promise<OperationPage>;
  /**
   * Claims up to `maximum` queued operations the worker may take (known, live, not
   * draining, satisfying their platform), in policy order: each becomes EXECUTING
   * on it with one more attempt.
   */
  claim(context: RequestContext, workerId: string, maximum: number, nowMs: number): Promise<OperationRecord[]>;
  /**
   * Ends an unfinished operation with `response`. With `workerId`, only if the
   * operation is EXECUTING on that worker. Returns the completed record, or
   * undefined when nothing changed.
   */
  complete(
    context: RequestContext,
    name: string,
    response: ExecuteResponse,
    workerId: string | undefined,
    nowMs: number,
  ): Promise<OperationRecord | undefined>;
  /**
   * Gives an operation EXECUTING on `workerId` back to the queue. A lost lease
   * (`countAttempt`) past the policy's attempt limit completes it with the
   * policy's error instead; a released one does not count as an attempt. Returns
   * the changed record, or undefined when the worker did not hold it.
   */
  requeue(
    context: RequestContext,
    name: string,
    workerId: string,
    countAttempt: boolean,
    nowMs: number,
  ): Promise<OperationRecord | undefined>;
  /** Requeues (as lost leases) everything the worker holds; returns the changed records. */
  requeueWorker(context: RequestContext, workerId: string, nowMs: number): Promise<OperationRecord[]>;
  /**
   * Requeues (as lost leases) what workers silent since before `silentSinceMs` hold,
   * and forgets workers silent since before `forgetBeforeMs`. Returns the changed records.
   */
  expireLeases(
    context: RequestContext,
    silentSinceMs: number,
    forgetBeforeMs: number,
    nowMs: number,
  ): Promise<OperationRecord[]>;
  /** Forgets the operation; returns it as it was, or undefined when unknown. */
  delete(context: RequestContext, name: string): Promise<OperationRecord | undefined>;
  /** Forgets operations completed before `completedBeforeMs`, except those named in `keep`. */
  forgetCompleted(context: RequestContext, completedBeforeMs: number, keep: ReadonlySet<string>): Promise<void>;

  /** Records a worker's heartbeat (a new worker, or new properties); keeps its draining mark. */
  putWorker(context: RequestContext, worker: Omit<WorkerRecord, 'draining' | 'goneAtMs'>, nowMs: number): Promise<void>;
  /** Marks a worker's session as ended (it is remembered for a while); false when unknown. */
  markWorkerGone(context: RequestContext, workerId: string, nowMs: number): Promise<boolean>;
  /** Sets or clears a worker's draining mark; false when the worker is unknown. */
  setDraining(context: RequestContext, workerId: string, draining: boolean): Promise<boolean>;
  listWorkers(context: RequestContext): Promise<WorkerRecord[]>;
  /** Queue depth and age per kind of worker, for operators and metrics. */
  queues(context: RequestContext): Promise<PlatformQueue[]>;

  /** Saves what must survive and releases resources. */
  close(): Promise<void>;
}
