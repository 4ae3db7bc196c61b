/**
 * The scheduler's decisions, as pure functions of their inputs (no clock, no I/O,
 * no state of their own): which worker may run what, which queued action goes
 * first, how clients share the farm, when identical actions are one, when a lost
 * action is given up, and whether an action could ever run. Every operation store
 * (memory, file, a database) applies the same policy, so they schedule alike.
 *
 * Order of the queue: lower ExecutionPolicy.priority first; then, for the worker
 * asking, actions whose `priority`-matched properties it offers; then by fair
 * sequence: each client key numbers its submissions starting no lower than the
 * number last served, so concurrent clients take turns; then by arrival.
 */
import type { RequestContext } from '../context/requestContext.js';
import { digestKey } from '../digest/digest.js';
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code } from '../util/status.js';
import { type PlatformMatcher, type PlatformMatchRules, platformMatcher } from './platformMatch.js';
import { bubblewrapHint } from './sandboxProperties.js';
import type { ActionRequest, PlatformProperty, WorkerRecord } from './types.js';

export interface SchedulingPolicyOptions {
  /** How many times an action is handed out before it fails for lost workers. */
  maximumAttempts?: number;
  /** Workers seen within this long count for "could this action ever run". */
  workerMemoryMs?: number;
  /**
   * A worker whose session ended (it vanished, or said goodbye) counts that long
   * more, so that a worker restarting or reconnecting finds its work still queued;
   * afterwards what only it could run fails. Default 15 s.
   */
  reconnectGraceMs?: number;
  /** Until a first worker is seen, actions wait this long after start-up rather than failing. */
  startupGraceMs?: number;
  /** Per-property matching rules (see platformMatch.ts). */
  platformMatch?: PlatformMatchRules;
}

/** What a store keeps beside an operation to order the queue. */
export interface QueuePosition {
  priority: number;
  fairSequence: number;
  arrival: number;
  platform: readonly PlatformProperty[];
}

/** What becomes of an action whose worker was lost. */
export type LostLeaseOutcome = { requeue: true } | { requeue: false; response: ExecuteResponse };

export class SchedulingPolicy {
  readonly matcher: PlatformMatcher;
  readonly maximumAttempts: number;
  readonly workerMemoryMs: number;
  readonly reconnectGraceMs: number;
  readonly startupGraceMs: number;

  constructor(options: SchedulingPolicyOptions = {}) {
    this.matcher = platformMatcher(options.platformMatch);
    this.maximumAttempts = options.maximumAttempts ?? 3;
    this.workerMemoryMs = options.workerMemoryMs ?? 10 * 60_000;
    this.reconnectGraceMs = options.reconnectGraceMs ?? 15_000;
    this.startupGraceMs = options.startupGraceMs ?? 60_000;
  }

  /**
   * The key under which identical in-flight actions are one operation, or
   * undefined when the action must run on its own (do_not_cache).
   */
  dedupeKey(request: ActionRequest): string | undefined {
    if (request.doNotCache) return undefined;
    return `${request.instanceName}\0${request.digestFunction}\0${digestKey(request.actionDigest)}`;
  }

  /** The priority of an operation shared by waiters: the most urgent one's. */
  sharedPriority(current: number, joining: number): number {
    return Math.min(current, joining);
  }

  /** The fair sequence number of a client's next queued action. */
  nextFairSequence(clientLast: number | undefined, lastServed: number): number {
    return Math.max(clientLast ?? 0, lastServed) + 1;
  }

  /** Whether `worker` may take an action (it must also be live and not draining). */
  mayTake(worker: WorkerRecord, platform: readonly PlatformProperty[]): boolean {
    return !worker.draining && worker.goneAtMs === undefined && this.matcher.satisfies(worker.properties, platform);
  }

  /** Orders two queued actions for the worker asking: negative when `a` goes first. */
  compare(worker: WorkerRecord, a: QueuePosition, b: QueuePosition): number {
    return (
      a.priority - b.priority ||
      this.matcher.preferenceMisses(worker.properties, a.platform) -
        this.matcher.preferenceMisses(worker.properties, b.platform) ||
      a.fairSequence - b.fairSequence ||
      a.arrival - b.arrival
    );
  }

  /** Requeue an action whose worker was lost after `attempts` tries, or give it up. */
  afterLostLease(attempts: number): LostLeaseOutcome {
    if (attempts < this.maximumAttempts) return { requeue: true };
    return {
      requeue: false,
      response: errorResponse(Code.UNAVAILABLE, `the action was lost by ${attempts} workers in a row; giving up`),
    };
  }

  /**
   * Whether some worker could run an action with this platform: a worker seen
   * lately (draining ones excepted) whose session is live or ended less than
   * reconnectGraceMs ago satisfies it; or no worker was ever seen and the server
   * started so recently that workers may still be connecting.
   */
  couldRun(
    workers: readonly WorkerRecord[],
    platform: readonly PlatformProperty[],
    nowMs: number,
    startedAtMs: number,
  ): boolean {
    let anyWorker = false;
    for (const worker of workers) {
      if (worker.lastSeenMs < nowMs - this.workerMemoryMs) continue;
      // A worker seen at all ends the start-up grace, even one gone for good.
      anyWorker = true;
      if (!this.counts(worker, nowMs)) continue;
      if (!worker.draining && this.matcher.satisfies(worker.properties, platform)) return true;
    }
    return !anyWorker && nowMs - startedAtMs < this.startupGraceMs;
  }

  /** Why couldRun said no, in words for the client: who could have run it and what became of them. */
  whyNoWorker(workers: readonly WorkerRecord[], platform: readonly PlatformProperty[], nowMs: number): string {
    const wanted = platform.map((p) => `${p.name}=${p.value}`).join(', ') || '(none)';
    const able = workers.filter((worker) => this.matcher.satisfies(worker.properties, platform));
    const gone = able
      .filter((worker) => worker.goneAtMs !== undefined)
      .sort((a, b) => (b.goneAtMs ?? 0) - (a.goneAtMs ?? 0))[0];
    const draining = able.find((worker) => worker.goneAtMs === undefined && worker.draining);
    let detail = 'no connected worker offers them';
    if (draining) detail = `the only worker that offers them (${nameOf(draining)}) is draining`;
    else if (gone) {
      const seconds = Math.round((nowMs - (gone.goneAtMs ?? nowMs)) / 1000);
      detail = `the last worker that offered them (${nameOf(gone)}) left ${seconds} s ago and no other has come`;
    }
    return `no worker can run an action with platform properties ${wanted}: ${detail}${bubblewrapHint(platform)}`;
  }

  /** Whether a worker seen lately still counts for couldRun: live, or gone within the reconnect grace. */
  private counts(worker: WorkerRecord, nowMs: number): boolean {
    return worker.goneAtMs === undefined || worker.goneAtMs >= nowMs - this.reconnectGraceMs;
  }
}

function nameOf(worker: WorkerRecord): string {
  return worker.botId ?? worker.id;
}

/**
 * The client key work is shared fairly between: the build's invocation (its
 * correlated invocations id, else its tool invocation id) from RequestMetadata,
 * else the connection, else the caller.
 */
export function fairnessKeyOf(context: RequestContext): string {
  const { metadata } = context;
  const invocation = metadata.correlatedInvocationsId || metadata.toolInvocationId;
  if (invocation) return `${metadata.toolName ?? 'client'}:${invocation}`;
  return context.peer ?? context.principal?.name ?? 'anonymous';
}

/** An ExecuteResponse that carries only a status: how the scheduler ends an operation it gave up on. */
export function errorResponse(code: Code, message: string): ExecuteResponse {
  return {
    result: undefined,
    cachedResult: false,
    status: { code, message, details: [] },
    serverLogs: {},
    message,
  };
}
