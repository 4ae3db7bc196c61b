/**
 * The vocabulary shared by the execution service, the scheduler, its stores and
 * the bots service: what a client asked to run, where an operation stands, and
 * what the scheduler knows about a worker.
 */
import type { ClientMetadata } from '../context/requestContext.js';
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
  /**
   * How long the action may run: the one value the server decided (the Action's
   * own timeout, or the server's default) and the one the worker enforces.
   */
  timeoutMs: number;
  /**
   * What the client said about itself (tool, invocation, mnemonic, target), for
   * filtering and logs. Absent in operations saved before it was recorded.
   */
  clientMetadata?: ClientMetadata;
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
  /** When a worker last took it. */
  startedAtMs?: number;
  completedAtMs?: number;
  response?: ExecuteResponse;
  /**
   * Grows at every change of the record, so a watcher that hears of changes
   * late or twice (another frontend, a database notification) can tell old news.
   */
  version: number;
}

/**
 * The bot property by which a bot says what its leases may carry: `action` (the
 * Action itself, its timeout set to the one the server decided) instead of the
 * Action's digest. Like `slots`, it describes the bot and is never matched.
 */
export const LEASE_PAYLOAD_PROPERTY = 'lease-payload';

/** A unit of work handed to a worker. */
export interface Assignment {
  operationName: string;
  request: ActionRequest;
}

/** What the scheduler knows about a worker (a bot session). */
export interface WorkerRecord {
  /** The bot session's name: leases are held under it. */
  id: string;
  /** The bot's own name (Remote Workers API bot_id), for people. */
  botId?: string;
  properties: PlatformProperty[];
  /** Leases it may hold at once. */
  slots?: number;
  lastSeenMs: number;
  /** Set by an operator: the worker finishes what it holds and takes nothing new. */
  draining: boolean;
  /** When its session ended; it is remembered a while for "could this action ever run". */
  goneAtMs?: number;
}

/** How a worker announces itself at each heartbeat, beyond its id and properties. */
export interface WorkerDetails {
  botId?: string;
  slots?: number;
}
