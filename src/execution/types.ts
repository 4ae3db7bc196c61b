/**
 * The vocabulary shared by the execution service, the scheduler and the bots
 * service: what a client asked to run, and where an operation stands.
 */
import type { Digest } from '../digest/digest.js';
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';

export interface PlatformProperty {
  name: string;
  value: string;
}

/** A validated Execute request, ready to queue. */
export interface ActionRequest {
  instanceName: string;
  digestFunction: number;
  actionDigest: Digest;
  /** Requirements a worker must satisfy (from Action.platform or Command.platform). */
  platform: PlatformProperty[];
  /** Lower runs first, as in ExecutionPolicy.priority. */
  priority: number;
  /** Who asked: work is shared fairly between distinct client keys. */
  clientKey: string;
  doNotCache: boolean;
  timeoutMs: number;
}

export type Stage = 'QUEUED' | 'EXECUTING' | 'COMPLETED';

export interface OperationRecord {
  name: string;
  request: ActionRequest;
  stage: Stage;
  queuedAtMs: number;
  /** Bot session currently (or last) running it. */
  workerId?: string;
  /** How many times a worker took it. */
  attempts: number;
  response?: ExecuteResponse;
}

/** A unit of work handed to a worker. */
export interface Assignment {
  operationName: string;
  request: ActionRequest;
}
