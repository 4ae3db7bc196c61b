/**
 * The scheduler's contract, split by role so that each side sees only what it
 * needs (clients submitting and waiting, workers taking and reporting leases,
 * operators looking on) and so that every operation store passes the same
 * contract tests. Calls a client or a bot causes take its RequestContext first.
 */
import type { RequestContext } from '../context/requestContext.js';
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { OperationPage, OperationQuery, PlatformQueue } from './operationStore.js';
import type {
  ActionRequest,
  Assignment,
  OperationRecord,
  PlatformProperty,
  WorkerDetails,
  WorkerRecord,
} from './types.js';

/** What clients (the Execution and Operations services) do. */
export interface ClientQueue {
  /** Queues an action, or joins an identical one already in flight. */
  submit(context: RequestContext, request: ActionRequest): Promise<OperationRecord>;
  /** Records an operation that completed without running (an action cache hit). */
  recordCompleted(context: RequestContext, request: ActionRequest, response: ExecuteResponse): Promise<OperationRecord>;
  get(context: RequestContext, name: string): Promise<OperationRecord | undefined>;
  /** Operations oldest first, filtered and a page at a time (all of them without a query). */
  list(context: RequestContext, query?: OperationQuery): Promise<OperationPage>;
  /** Calls onChange now and at every change until the returned function is called. */
  watch(context: RequestContext, name: string, onChange: (operation: OperationRecord) => void): Promise<() => void>;
  /** Ends the operation with CANCELLED; a running action is stopped on its worker. */
  cancel(context: RequestContext, name: string): Promise<boolean>;
  delete(context: RequestContext, name: string): Promise<boolean>;
  /**
   * True if some live (or recently seen) worker could run an action with this
   * platform; throws INVALID_ARGUMENT for a platform no worker could ever match.
   */
  couldRun(context: RequestContext, platform: readonly PlatformProperty[]): Promise<boolean>;
}

/** What workers (through the Bots service) do. */
export interface WorkerQueue {
  /** Announces a worker (or refreshes it); a worker that stops calling this expires. */
  heartbeat(
    context: RequestContext,
    workerId: string,
    properties: readonly PlatformProperty[],
    details?: WorkerDetails,
  ): Promise<void>;
  /** Assigns up to `maximum` queued actions this worker can run. */
  take(context: RequestContext, workerId: string, maximum: number): Promise<Assignment[]>;
  /** Resolves when new work may be available, after timeoutMs, or when the context aborts. */
  waitForWork(context: RequestContext, timeoutMs: number): Promise<void>;
  /** The operation, if it is EXECUTING on this worker. */
  leaseOf(context: RequestContext, workerId: string, operationName: string): Promise<OperationRecord | undefined>;
  /** Reports a finished action; ignored if the operation no longer belongs to this worker. */
  complete(context: RequestContext, workerId: string, operationName: string, response: ExecuteResponse): Promise<void>;
  /** The worker gave up an operation without finishing it: queue it again. */
  release(context: RequestContext, workerId: string, operationName: string): Promise<void>;
  /** Whether the worker should stop running this operation (cancelled, or given to another worker). */
  shouldAbandon(context: RequestContext, workerId: string, operationName: string): Promise<boolean>;
  /** The worker is gone: its operations go back to the queue. */
  removeWorker(context: RequestContext, workerId: string): Promise<void>;
}

/** A worker as operators see it: what it offers and what it runs. */
export interface WorkerView extends WorkerRecord {
  /** The operations it runs now. */
  leases: OperationRecord[];
}

/**
 * What operators, metrics and a UI read (and the one thing they do: drain a
 * worker). Nothing here changes an operation.
 */
export interface SchedulerAdmin {
  workers(context: RequestContext): Promise<WorkerView[]>;
  queues(context: RequestContext): Promise<PlatformQueue[]>;
  operations(context: RequestContext, query: OperationQuery): Promise<OperationPage>;
  /** The worker finishes what it holds and is given nothing new; false when unknown. */
  drainWorker(context: RequestContext, workerId: string, draining?: boolean): Promise<boolean>;
}

export interface Scheduler extends ClientQueue, WorkerQueue, SchedulerAdmin {
  close(): Promise<void>;
}
