/**
 * The operation store of one process: maps in memory, every step synchronous (so
 * atomic) behind the async interface. FileOperationStore saves it to disk; its
 * `entries()`, `entry()` and `restore()` exist for that.
 */
import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../context/requestContext.js';
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { decodePageToken, encodePageToken, matchesQuery, queueOrder } from './operationQuery.js';
import type { Enqueued, OperationPage, OperationQuery, OperationStore, PlatformQueue } from './operationStore.js';
import type { SchedulingPolicy } from './schedulingPolicy.js';
import type { ActionRequest, OperationRecord, WorkerRecord } from './types.js';

/** An operation as the memory store keeps it: the record plus its place in the queue. */
export interface StoredOperation extends OperationRecord {
  fairSequence: number;
  arrival: number;
}

export class MemoryOperationStore implements OperationStore {
  private readonly operations = new Map<string, StoredOperation>();
  private readonly inFlight = new Map<string, string>();
  private readonly workers = new Map<string, WorkerRecord>();
  private readonly clientSequence = new Map<string, number>();
  private servedSequence = 0;
  private arrivals = 0;

  constructor(private readonly policy: SchedulingPolicy) {}

  async enqueue(_context: RequestContext, request: ActionRequest, nowMs: number): Promise<Enqueued> {
    const key = this.policy.dedupeKey(request);
    const existing = key === undefined ? undefined : this.operations.get(this.inFlight.get(key) ?? '');
    if (existing && existing.stage !== 'COMPLETED') {
      const priority = this.policy.sharedPriority(existing.request.priority, request.priority);
      // Only a waiting operation moves up the queue; a running one is past it.
      if (existing.stage === 'QUEUED' && priority !== existing.request.priority) {
        existing.request.priority = priority;
        existing.version++;
      }
      return { operation: snapshot(existing), created: false };
    }
    const entry = this.newEntry(request, nowMs, true);
    this.operations.set(entry.name, entry);
    if (key !== undefined) this.inFlight.set(key, entry.name);
    return { operation: snapshot(entry), created: true };
  }

  async insertCompleted(
    _context: RequestContext,
    request: ActionRequest,
    response: ExecuteResponse,
    nowMs: number,
  ): Promise<OperationRecord> {
    // A cache hit never waits in the queue, so it must not use up the client's fair share.
    const entry = this.newEntry(request, nowMs, false);
    entry.stage = 'COMPLETED';
    entry.response = response;
    entry.completedAtMs = nowMs;
    this.operations.set(entry.name, entry);
    return snapshot(entry);
  }

  async get(_context: RequestContext, name: string): Promise<OperationRecord | undefined> {
    const entry = this.operations.get(name);
    return entry ? snapshot(entry) : undefined;
  }

  async list(_context: RequestContext, query: OperationQuery): Promise<OperationPage> {
    const after = decodePageToken(query.pageToken);
    const matching = [...this.operations.values()]
      .filter((entry) => matchesQuery(entry, query) && (!after || queueOrder(entry, after) > 0))
      .sort(queueOrder);
    const size = query.pageSize && query.pageSize > 0 ? query.pageSize : matching.length;
    const page = matching.slice(0, size);
    const last = page.at(-1);
    return {
      operations: page.map(snapshot),
      nextPageToken: matching.length > size && last ? encodePageToken(last) : '',
    };
  }

  async claim(_context: RequestContext, workerId: string, maximum: number, nowMs: number): Promise<OperationRecord[]> {
    const worker = this.workers.get(workerId);
    if (!worker || maximum <= 0) return [];
    const candidates = [...this.operations.values()]
      .filter((entry) => entry.stage === 'QUEUED' && this.policy.mayTake(worker, entry.request.platform))
      .map((entry) => ({
        entry,
        position: { ...entry, priority: entry.request.priority, platform: entry.request.platform },
      }))
      .sort((a, b) => this.policy.compare(worker, a.position, b.position))
      .slice(0, maximum)
      .map(({ entry }) => entry);
    for (const entry of candidates) {
      entry.stage = 'EXECUTING';
      entry.workerId = workerId;
      entry.attempts++;
      entry.startedAtMs = nowMs;
      entry.version++;
      this.servedSequence = Math.max(this.servedSequence, entry.fairSequence);
    }
    return candidates.map(snapshot);
  }

  async complete(
    _context: RequestContext,
    name: string,
    response: ExecuteResponse,
    workerId: string | undefined,
    nowMs: number,
  ): Promise<OperationRecord | undefined> {
    const entry = this.operations.get(name);
    if (!entry || entry.stage === 'COMPLETED') return undefined;
    if (workerId !== undefined && (entry.stage !== 'EXECUTING' || entry.workerId !== workerId)) return undefined;
    this.finish(entry, response, nowMs);
    return snapshot(entry);
  }

  async requeue(
    _context: RequestContext,
    name: string,
    workerId: string,
    countAttempt: boolean,
    nowMs: number,
  ): Promise<OperationRecord | undefined> {
    const entry = this.operations.get(name);
    if (entry?.stage !== 'EXECUTING' || entry.workerId !== workerId) return undefined;
    if (!countAttempt) entry.attempts--; // Given back unstarted: not a failed attempt.
    this.returnToQueue(entry, nowMs);
    return snapshot(entry);
  }

  async requeueWorker(_context: RequestContext, workerId: string, nowMs: number): Promise<OperationRecord[]> {
    const changed: OperationRecord[] = [];
    for (const entry of this.operations.values()) {
      if (entry.stage === 'EXECUTING' && entry.workerId === workerId) {
        this.returnToQueue(entry, nowMs);
        changed.push(snapshot(entry));
      }
    }
    return changed;
  }

  async expireLeases(
    context: RequestContext,
    silentSinceMs: number,
    forgetBeforeMs: number,
    nowMs: number,
  ): Promise<OperationRecord[]> {
    const changed: OperationRecord[] = [];
    for (const [id, worker] of this.workers) {
      if (worker.lastSeenMs >= silentSinceMs) continue;
      changed.push(...(await this.requeueWorker(context, id, nowMs)));
      // Kept a while longer for couldRun(); it holds no work now.
      if (worker.lastSeenMs < forgetBeforeMs) this.workers.delete(id);
    }
    return changed;
  }

  async delete(_context: RequestContext, name: string): Promise<OperationRecord | undefined> {
    const entry = this.operations.get(name);
    if (!entry) return undefined;
    this.operations.delete(name);
    this.leaveInFlight(entry);
    return snapshot(entry);
  }

  async forgetCompleted(_context: RequestContext, completedBeforeMs: number, keep: ReadonlySet<string>): Promise<void> {
    this.forgetCompletedNow(completedBeforeMs, keep);
  }

  /** forgetCompleted, returning the names it forgot (the file store journals them). */
  forgetCompletedNow(completedBeforeMs: number, keep: ReadonlySet<string>): string[] {
    const forgotten: string[] = [];
    for (const [name, entry] of this.operations) {
      if (entry.stage === 'COMPLETED' && (entry.completedAtMs ?? 0) < completedBeforeMs && !keep.has(name)) {
        this.operations.delete(name);
        forgotten.push(name);
      }
    }
    return forgotten;
  }

  async putWorker(
    _context: RequestContext,
    worker: Omit<WorkerRecord, 'draining' | 'goneAtMs'>,
    _nowMs: number,
  ): Promise<void> {
    const known = this.workers.get(worker.id);
    this.workers.set(worker.id, {
      ...structuredClone(worker),
      draining: known?.draining ?? false,
    });
  }

  async markWorkerGone(_context: RequestContext, workerId: string, nowMs: number): Promise<boolean> {
    const worker = this.workers.get(workerId);
    if (!worker) return false;
    worker.goneAtMs ??= nowMs;
    return true;
  }

  async setDraining(_context: RequestContext, workerId: string, draining: boolean): Promise<boolean> {
    const worker = this.workers.get(workerId);
    if (!worker) return false;
    worker.draining = draining;
    return true;
  }

  async listWorkers(_context: RequestContext): Promise<WorkerRecord[]> {
    return [...this.workers.values()].map((worker) => structuredClone(worker));
  }

  async queues(_context: RequestContext): Promise<PlatformQueue[]> {
    const queues = new Map<string, PlatformQueue>();
    for (const entry of this.operations.values()) {
      if (entry.stage === 'COMPLETED') continue;
      const queueKey = this.policy.matcher.queueKey(entry.request.platform);
      let queue = queues.get(queueKey);
      if (!queue) {
        queue = { queueKey, platform: structuredClone(entry.request.platform), queued: 0, executing: 0 };
        queues.set(queueKey, queue);
      }
      if (entry.stage === 'EXECUTING') {
        queue.executing++;
        continue;
      }
      queue.queued++;
      if (queue.oldestQueuedAtMs === undefined || entry.queuedAtMs < queue.oldestQueuedAtMs) {
        queue.oldestQueuedAtMs = entry.queuedAtMs;
      }
    }
    return [...queues.values()].sort((a, b) => a.queueKey.localeCompare(b.queueKey));
  }

  async close(): Promise<void> {}

  /** Every operation with its queue position, for saving. */
  entries(): StoredOperation[] {
    return [...this.operations.values()].map(storedSnapshot);
  }

  /** One operation with its queue position, for saving; undefined when it is not (or no longer) known. */
  entry(name: string): StoredOperation | undefined {
    const entry = this.operations.get(name);
    return entry ? storedSnapshot(entry) : undefined;
  }

  /**
   * Loads saved operations into an empty store. Leases from before are void (their
   * workers will come back with new sessions), so running operations are queued again.
   */
  restore(entries: readonly StoredOperation[]): void {
    for (const saved of entries) {
      const entry: StoredOperation = { ...saved, version: saved.version ?? 0, arrival: this.arrivals++ };
      if (entry.stage === 'EXECUTING') {
        entry.stage = 'QUEUED';
        entry.workerId = undefined;
      }
      this.operations.set(entry.name, entry);
      const key = this.policy.dedupeKey(entry.request);
      if (entry.stage !== 'COMPLETED' && key !== undefined) this.inFlight.set(key, entry.name);
      const client = entry.request.clientKey;
      this.clientSequence.set(client, Math.max(this.clientSequence.get(client) ?? 0, entry.fairSequence));
    }
  }

  private newEntry(request: ActionRequest, nowMs: number, queued: boolean): StoredOperation {
    const fairSequence = this.policy.nextFairSequence(this.clientSequence.get(request.clientKey), this.servedSequence);
    if (queued) this.clientSequence.set(request.clientKey, fairSequence);
    return {
      name: `operations/${randomUUID()}`,
      request: structuredClone(request),
      stage: 'QUEUED',
      queuedAtMs: nowMs,
      attempts: 0,
      version: 1,
      fairSequence,
      arrival: this.arrivals++,
    };
  }

  private returnToQueue(entry: StoredOperation, nowMs: number): void {
    const outcome = this.policy.afterLostLease(entry.attempts);
    if (!outcome.requeue) {
      this.finish(entry, outcome.response, nowMs);
      return;
    }
    entry.stage = 'QUEUED';
    entry.workerId = undefined;
    entry.version++;
  }

  private finish(entry: StoredOperation, response: ExecuteResponse, nowMs: number): void {
    entry.stage = 'COMPLETED';
    entry.response = response;
    entry.completedAtMs = nowMs;
    entry.version++;
    this.leaveInFlight(entry);
  }

  private leaveInFlight(entry: StoredOperation): void {
    const key = this.policy.dedupeKey(entry.request);
    if (key !== undefined && this.inFlight.get(key) === entry.name) this.inFlight.delete(key);
  }
}

function storedSnapshot(entry: StoredOperation): StoredOperation {
  return { ...snapshot(entry), fairSequence: entry.fairSequence, arrival: entry.arrival };
}

/** A copy of the record callers may keep (the response is never changed once set, so it is shared). */
function snapshot(entry: StoredOperation): OperationRecord {
  return {
    name: entry.name,
    request: structuredClone(entry.request),
    stage: entry.stage,
    queuedAtMs: entry.queuedAtMs,
    workerId: entry.workerId,
    attempts: entry.attempts,
    startedAtMs: entry.startedAtMs,
    completedAtMs: entry.completedAtMs,
    response: entry.response,
    version: entry.version,
  };
}
