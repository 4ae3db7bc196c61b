/**
 * The scheduler's contract, split by role so that each side sees only what it
 * needs and so that another implementation (a shared database for scaled-out
 * frontends) can pass the same contract tests as the embedded one.
 */
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { ActionRequest, Assignment, OperationRecord, PlatformProperty } from './types.js';

/** What clients (the Execution and Operations services) do. */
export interface ClientQueue {
  /** Queues an action, or joins an identical one already in flight. */
  submit(request: ActionRequest): Promise<OperationRecord>;
  /** Records an operation that completed without running (an action cache hit). */
  recordCompleted(request: ActionRequest, response: ExecuteResponse): Promise<OperationRecord>;
  get(name: string): Promise<OperationRecord | undefined>;
  list(): Promise<OperationRecord[]>;
  /** Calls onChange now and at every change until the returned function is called. */
  watch(name: string, onChange: (operation: OperationRecord) => void): Promise<() => void>;
  /** Ends the operation with CANCELLED; a running action is stopped on its worker. */
  cancel(name: string): Promise<boolean>;
  delete(name: string): Promise<boolean>;
  /** True if some live (or recently seen) worker could run an action with this platform. */
  couldRun(platform: readonly PlatformProperty[]): Promise<boolean>;
}

/** What workers (through the Bots service) do. */
export interface WorkerQueue {
  /** Announces a worker (or refreshes it); a worker that stops calling this expires. */
  heartbeat(workerId: string, properties: readonly PlatformProperty[]): Promise<void>;
  /** Assigns up to `maximum` queued actions this worker can run. */
  take(workerId: string, maximum: number): Promise<Assignment[]>;
  /** Resolves when new work may be available, or after timeoutMs. */
  waitForWork(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Reports a finished action; ignored if the operation no longer belongs to this worker. */
  complete(workerId: string, operationName: string, response: ExecuteResponse): Promise<void>;
  /** The worker gave up an operation without finishing it: queue it again. */
  release(workerId: string, operationName: string): Promise<void>;
  /** Whether the worker should stop running this operation (cancelled, or given to another worker). */
  shouldAbandon(workerId: string, operationName: string): Promise<boolean>;
  /** The worker is gone: its operations go back to the queue. */
  removeWorker(workerId: string): Promise<void>;
}

export interface Scheduler extends ClientQueue, WorkerQueue {
  close(): Promise<void>;
}
