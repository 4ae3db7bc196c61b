/**
 * The embedded scheduler: all state in this process, saved to a JSON file after
 * changes (atomically, by rename) so that a restart loses nothing already
 * accepted. After a restart, actions that were running go back to the queue; the
 * workers that ran them reconnect with new sessions.
 *
 * Fairness: each client key gets a sequence number per submitted action, starting
 * no lower than the number last served, and the queue is ordered by (priority,
 * that number, arrival), so concurrent clients take turns.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { digestKey } from '../digest/digest.js';
import { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code, notFound } from '../util/status.js';
import { satisfies } from './platformMatch.js';
import type { Scheduler } from './scheduler.js';
import type { ActionRequest, Assignment, OperationRecord, PlatformProperty } from './types.js';

export interface EmbeddedSchedulerOptions {
  /** Where to persist operations; in memory only when absent. */
  stateFile?: string;
  /** A worker silent for this long is considered gone. */
  workerTimeoutMs?: number;
  /** How many times an action is handed out before it fails for lost workers. */
  maximumAttempts?: number;
  /** Completed operations are forgotten after this long. */
  completedRetentionMs?: number;
  /** Workers seen within this long count for "could this action ever run". */
  workerMemoryMs?: number;
  /** Until a first worker is seen, actions wait this long after start-up rather than failing. */
  startupGraceMs?: number;
  /** Called once per action completed by a worker (to fill the action cache). */
  onCompleted?: (operation: OperationRecord) => Promise<void>;
  now?: () => number;
}

interface WorkerRecord {
  properties: readonly PlatformProperty[];
  lastSeenMs: number;
}

interface Entry extends OperationRecord {
  fairSequence: number;
  arrival: number;
  completedAtMs?: number;
}

export class EmbeddedScheduler implements Scheduler {
  private readonly operations = new Map<string, Entry>();
  private readonly inFlight = new Map<string, string>();
  private readonly watchers = new Map<string, Set<(op: OperationRecord) => void>>();
  private readonly workers = new Map<string, WorkerRecord>();
  private readonly clientSequence = new Map<string, number>();
  private readonly workWaiters = new Set<() => void>();
  private servedSequence = 0;
  private arrivals = 0;
  private readonly startedAtMs: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;
  private saveTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private saving: Promise<void> = Promise.resolve();

  private constructor(private readonly options: EmbeddedSchedulerOptions) {
    this.now = options.now ?? Date.now;
    this.startedAtMs = this.now();
    // Sweep often enough that a short worker timeout is enforced close to on time.
    const sweepMs = Math.min(1000, Math.max(10, (options.workerTimeoutMs ?? 30_000) / 2));
    this.sweeper = setInterval(() => void this.sweep(), sweepMs);
    this.sweeper.unref();
  }

  static async open(options: EmbeddedSchedulerOptions = {}): Promise<EmbeddedScheduler> {
    const scheduler = new EmbeddedScheduler(options);
    await scheduler.load();
    return scheduler;
  }

  // ---- clients ----

  async submit(request: ActionRequest): Promise<OperationRecord> {
    const key = dedupeKey(request);
    if (!request.doNotCache) {
      const existing = this.inFlight.get(key);
      const entry = existing ? this.operations.get(existing) : undefined;
      if (entry && entry.stage !== 'COMPLETED') {
        // A more urgent waiter raises the shared operation's priority.
        if (request.priority < entry.request.priority && entry.stage === 'QUEUED')
          entry.request.priority = request.priority;
        return snapshot(entry);
      }
    }
    const entry = this.newEntry(request);
    this.operations.set(entry.name, entry);
    if (!request.doNotCache) this.inFlight.set(key, entry.name);
    this.changed(entry);
    this.wakeWorkers();
    return snapshot(entry);
  }

  async recordCompleted(request: ActionRequest, response: ExecuteResponse): Promise<OperationRecord> {
    // A cache hit never waits in the queue, so it must not use up the client's fair share.
    const entry = this.newEntry(request, false);
    entry.stage = 'COMPLETED';
    entry.response = response;
    entry.completedAtMs = this.now();
    this.operations.set(entry.name, entry);
    this.changed(entry);
    return snapshot(entry);
  }

  async get(name: string): Promise<OperationRecord | undefined> {
    const entry = this.operations.get(name);
    return entry ? snapshot(entry) : undefined;
  }

  async list(): Promise<OperationRecord[]> {
    return [...this.operations.values()].map(snapshot);
  }

  async watch(name: string, onChange: (operation: OperationRecord) => void): Promise<() => void> {
    const entry = this.operations.get(name);
    if (!entry) throw notFound(`operation ${name} not found`);
    let set = this.watchers.get(name);
    if (!set) {
      set = new Set();
      this.watchers.set(name, set);
    }
    set.add(onChange);
    onChange(snapshot(entry));
    return () => {
      set.delete(onChange);
      if (set.size === 0) this.watchers.delete(name);
    };
  }

  async cancel(name: string): Promise<boolean> {
    const entry = this.operations.get(name);
    if (!entry) return false;
    if (entry.stage !== 'COMPLETED') {
      const wasExecuting = entry.stage === 'EXECUTING';
      this.finish(entry, errorResponse(Code.CANCELLED, 'the operation was cancelled'));
      // Wake long-polling bots so the worker running it hears at once that it should stop.
      if (wasExecuting) this.wakeWorkers();
    }
    return true;
  }

  async delete(name: string): Promise<boolean> {
    const entry = this.operations.get(name);
    if (!entry) return false;
    if (entry.stage !== 'COMPLETED') this.finish(entry, errorResponse(Code.CANCELLED, 'the operation was deleted'));
    this.operations.delete(name);
    this.scheduleSave();
    return true;
  }

  async couldRun(platform: readonly PlatformProperty[]): Promise<boolean> {
    const horizon = this.now() - (this.options.workerMemoryMs ?? 10 * 60_000);
    let anyWorker = false;
    for (const worker of this.workers.values()) {
      if (worker.lastSeenMs < horizon) continue;
      anyWorker = true;
      if (satisfies(worker.properties, platform)) return true;
    }
    // Right after start-up workers may not have connected yet: let actions wait.
    return !anyWorker && this.now() - this.startedAtMs < (this.options.startupGraceMs ?? 60_000);
  }

  // ---- workers ----

  async heartbeat(workerId: string, properties: readonly PlatformProperty[]): Promise<void> {
    this.workers.set(workerId, { properties, lastSeenMs: this.now() });
  }

  async take(workerId: string, maximum: number): Promise<Assignment[]> {
    const worker = this.workers.get(workerId);
    if (!worker || maximum <= 0) return [];
    const candidates = [...this.operations.values()]
      .filter((e) => e.stage === 'QUEUED' && satisfies(worker.properties, e.request.platform))
      .sort(
        (a, b) => a.request.priority - b.request.priority || a.fairSequence - b.fairSequence || a.arrival - b.arrival,
      )
      .slice(0, maximum);
    for (const entry of candidates) {
      entry.stage = 'EXECUTING';
      entry.workerId = workerId;
      entry.attempts++;
      this.servedSequence = Math.max(this.servedSequence, entry.fairSequence);
      this.changed(entry);
    }
    return candidates.map((e) => ({ operationName: e.name, request: structuredClone(e.request) }));
  }

  waitForWork(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.workWaiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.workWaiters.add(done);
      signal?.addEventListener('abort', done);
    });
  }

  async complete(workerId: string, operationName: string, response: ExecuteResponse): Promise<void> {
    const entry = this.operations.get(operationName);
    if (!entry || entry.stage !== 'EXECUTING' || entry.workerId !== workerId) return;
    // Fill the action cache before telling anyone the operation is done: a client that
    // sees COMPLETED and executes the action again must get the cached result. Until
    // then the operation stays in flight, so identical submissions still join it.
    try {
      await this.options.onCompleted?.({ ...snapshot(entry), stage: 'COMPLETED', response });
    } catch (error) {
      console.error(`granary: recording the result of ${operationName} failed:`, error);
    }
    // Cancelled meanwhile: keep the cancellation. Requeued meanwhile: the result is still good.
    const current = this.operations.get(operationName);
    if (current === entry && current.stage !== 'COMPLETED') this.finish(current, response);
  }

  async release(workerId: string, operationName: string): Promise<void> {
    const entry = this.operations.get(operationName);
    if (entry && entry.stage === 'EXECUTING' && entry.workerId === workerId) {
      entry.attempts--; // Given back unstarted: not a failed attempt.
      this.requeue(entry);
    }
  }

  async shouldAbandon(workerId: string, operationName: string): Promise<boolean> {
    const entry = this.operations.get(operationName);
    return !entry || entry.stage !== 'EXECUTING' || entry.workerId !== workerId;
  }

  async removeWorker(workerId: string): Promise<void> {
    // The record stays until the sweeper forgets it, so that couldRun() still counts
    // a worker that is reconnecting; it no longer takes work under this id.
    for (const entry of this.operations.values()) {
      if (entry.stage === 'EXECUTING' && entry.workerId === workerId) this.requeue(entry);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    // A save still pending would write after close (over the state of a reopened scheduler).
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    for (const wake of [...this.workWaiters]) wake();
    await this.save();
  }

  // ---- internals ----

  private newEntry(request: ActionRequest, queued = true): Entry {
    const previous = this.clientSequence.get(request.clientKey) ?? 0;
    const fairSequence = Math.max(previous, this.servedSequence) + 1;
    if (queued) this.clientSequence.set(request.clientKey, fairSequence);
    return {
      name: `operations/${randomUUID()}`,
      request: structuredClone(request),
      stage: 'QUEUED',
      queuedAtMs: this.now(),
      attempts: 0,
      fairSequence,
      arrival: this.arrivals++,
    };
  }

  private requeue(entry: Entry): void {
    if (entry.attempts >= (this.options.maximumAttempts ?? 3)) {
      this.finish(
        entry,
        errorResponse(Code.UNAVAILABLE, `the action was lost by ${entry.attempts} workers in a row; giving up`),
      );
      return;
    }
    entry.stage = 'QUEUED';
    entry.workerId = undefined;
    this.changed(entry);
    this.wakeWorkers();
  }

  private finish(entry: Entry, response: ExecuteResponse): void {
    entry.stage = 'COMPLETED';
    entry.response = response;
    entry.completedAtMs = this.now();
    const key = dedupeKey(entry.request);
    if (this.inFlight.get(key) === entry.name) this.inFlight.delete(key);
    this.changed(entry);
  }

  private changed(entry: Entry): void {
    const listeners = this.watchers.get(entry.name);
    if (listeners) for (const listener of [...listeners]) listener(snapshot(entry));
    this.scheduleSave();
  }

  private wakeWorkers(): void {
    for (const wake of [...this.workWaiters]) wake();
  }

  private sweep(): void {
    const now = this.now();
    const timeout = this.options.workerTimeoutMs ?? 30_000;
    for (const [id, worker] of this.workers) {
      if (now - worker.lastSeenMs > timeout) {
        for (const entry of this.operations.values()) {
          if (entry.stage === 'EXECUTING' && entry.workerId === id) this.requeue(entry);
        }
        // Keep the record a while for couldRun(); it no longer holds work.
        if (now - worker.lastSeenMs > (this.options.workerMemoryMs ?? 10 * 60_000)) this.workers.delete(id);
      }
    }
    const retention = this.options.completedRetentionMs ?? 60 * 60_000;
    for (const [name, entry] of this.operations) {
      if (entry.stage === 'COMPLETED' && now - (entry.completedAtMs ?? now) > retention && !this.watchers.has(name)) {
        this.operations.delete(name);
        this.scheduleSave();
      }
    }
  }

  private scheduleSave(): void {
    if (!this.options.stateFile || this.saveTimer || this.closed) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.save().catch((error: unknown) => console.error('granary: saving scheduler state failed:', error));
    }, 100);
    this.saveTimer.unref();
  }

  private save(): Promise<void> {
    const file = this.options.stateFile;
    if (!file) return Promise.resolve();
    const records = [...this.operations.values()].map((e) => ({
      ...e,
      response: e.response ? Buffer.from(ExecuteResponse.encode(e.response).finish()).toString('base64') : undefined,
    }));
    const text = JSON.stringify({ version: 1, operations: records });
    // One failed save must not stop every later one: chain on the outcome, not on success.
    this.saving = this.saving
      .catch(() => {})
      .then(async () => {
        await mkdir(dirname(file), { recursive: true });
        const temporary = `${file}.${randomUUID()}.tmp`;
        // Flushed before the rename, so a crash of the machine leaves the old or the new state, never an empty file.
        const handle = await open(temporary, 'w');
        try {
          await handle.writeFile(text);
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temporary, file);
      });
    return this.saving;
  }

  private async load(): Promise<void> {
    const file = this.options.stateFile;
    if (!file) return;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return; // No state yet.
    }
    try {
      const parsed = JSON.parse(text) as { operations?: Array<Entry & { response?: string }> } | null;
      const records = parsed?.operations ?? [];
      if (!Array.isArray(records)) throw new Error('"operations" is not a list');
      const entries = records.map((raw): Entry => {
        if (
          !raw ||
          typeof raw.name !== 'string' ||
          !raw.request?.actionDigest ||
          !['QUEUED', 'EXECUTING', 'COMPLETED'].includes(raw.stage)
        ) {
          throw new Error('malformed operation record');
        }
        return {
          ...raw,
          response: raw.response ? ExecuteResponse.decode(Buffer.from(raw.response, 'base64')) : undefined,
        };
      });
      for (const entry of entries) {
        if (entry.stage === 'EXECUTING') {
          entry.stage = 'QUEUED';
          entry.workerId = undefined;
        }
        entry.arrival = this.arrivals++;
        this.operations.set(entry.name, entry);
        if (entry.stage !== 'COMPLETED' && !entry.request.doNotCache)
          this.inFlight.set(dedupeKey(entry.request), entry.name);
        this.clientSequence.set(
          entry.request.clientKey,
          Math.max(this.clientSequence.get(entry.request.clientKey) ?? 0, entry.fairSequence),
        );
      }
    } catch (error) {
      // Start empty rather than half-loaded; keep the unreadable file aside for inspection.
      this.operations.clear();
      this.inFlight.clear();
      this.clientSequence.clear();
      const aside = `${file}.unreadable`;
      await rename(file, aside).catch(() => {});
      console.error(`granary: ignoring unreadable scheduler state (moved to ${aside}):`, error);
    }
  }
}

function dedupeKey(request: ActionRequest): string {
  return `${request.instanceName}\0${request.digestFunction}\0${digestKey(request.actionDigest)}`;
}

function snapshot(entry: Entry): OperationRecord {
  return {
    name: entry.name,
    request: entry.request,
    stage: entry.stage,
    queuedAtMs: entry.queuedAtMs,
    workerId: entry.workerId,
    attempts: entry.attempts,
    response: entry.response,
  };
}

export function errorResponse(code: Code, message: string): ExecuteResponse {
  return {
    result: undefined,
    cachedResult: false,
    status: { code, message, details: [] },
    serverLogs: {},
    message,
  };
}
