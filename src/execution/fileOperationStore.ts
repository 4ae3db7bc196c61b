/**
 * The memory store saved to disk as it changes (see OperationJournal: a snapshot
 * plus an append-only journal of changed operations), so a restarted server keeps
 * every operation it accepted. A change is written as soon as the write before it
 * is done (changes made meanwhile go together in the next write), never on a
 * timer, and each write is flushed to disk. After a restart, operations that were
 * running go back to the queue; their workers reconnect with new sessions.
 * Workers are not saved: they announce themselves again. An unreadable snapshot
 * is set aside and the store starts empty.
 */
import type { RequestContext } from '../context/requestContext.js';
import type { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { MemoryOperationStore } from './memoryOperationStore.js';
import { type JournalRecord, OperationJournal } from './operationJournal.js';
import type { Enqueued, OperationPage, OperationQuery, OperationStore, PlatformQueue } from './operationStore.js';
import type { SchedulingPolicy } from './schedulingPolicy.js';
import type { ActionRequest, OperationRecord, WorkerRecord } from './types.js';

/** The journal is compacted once it holds this much more than the snapshot (and at least the floor). */
const COMPACT_RATIO = 2;
const COMPACT_FLOOR_BYTES = 1024 * 1024;

export class FileOperationStore implements OperationStore {
  /** Operations changed (or forgotten) since they were last written. */
  private readonly dirty = new Set<string>();
  /** The write in progress (and those it chains to), if any. */
  private writing: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly memory: MemoryOperationStore,
    private readonly journal: OperationJournal,
  ) {}

  /** Opens the store saved in `file` (empty when the file does not exist yet). */
  static async open(file: string, policy: SchedulingPolicy): Promise<FileOperationStore> {
    const memory = new MemoryOperationStore(policy);
    const loaded = await OperationJournal.load(file);
    memory.restore(loaded.operations);
    return new FileOperationStore(memory, new OperationJournal(file, loaded.generation));
  }

  async enqueue(context: RequestContext, request: ActionRequest, nowMs: number): Promise<Enqueued> {
    const enqueued = await this.memory.enqueue(context, request, nowMs);
    this.changed(enqueued.operation);
    return enqueued;
  }

  async insertCompleted(
    context: RequestContext,
    request: ActionRequest,
    response: ExecuteResponse,
    nowMs: number,
  ): Promise<OperationRecord> {
    return this.changed(await this.memory.insertCompleted(context, request, response, nowMs));
  }

  get(context: RequestContext, name: string): Promise<OperationRecord | undefined> {
    return this.memory.get(context, name);
  }

  list(context: RequestContext, query: OperationQuery): Promise<OperationPage> {
    return this.memory.list(context, query);
  }

  async claim(context: RequestContext, workerId: string, maximum: number, nowMs: number): Promise<OperationRecord[]> {
    return this.changed(await this.memory.claim(context, workerId, maximum, nowMs));
  }

  async complete(
    context: RequestContext,
    name: string,
    response: ExecuteResponse,
    workerId: string | undefined,
    nowMs: number,
  ): Promise<OperationRecord | undefined> {
    return this.changed(await this.memory.complete(context, name, response, workerId, nowMs));
  }

  async requeue(
    context: RequestContext,
    name: string,
    workerId: string,
    countAttempt: boolean,
    nowMs: number,
  ): Promise<OperationRecord | undefined> {
    return this.changed(await this.memory.requeue(context, name, workerId, countAttempt, nowMs));
  }

  async requeueWorker(context: RequestContext, workerId: string, nowMs: number): Promise<OperationRecord[]> {
    return this.changed(await this.memory.requeueWorker(context, workerId, nowMs));
  }

  async expireLeases(
    context: RequestContext,
    silentSinceMs: number,
    forgetBeforeMs: number,
    nowMs: number,
  ): Promise<OperationRecord[]> {
    return this.changed(await this.memory.expireLeases(context, silentSinceMs, forgetBeforeMs, nowMs));
  }

  async delete(context: RequestContext, name: string): Promise<OperationRecord | undefined> {
    return this.changed(await this.memory.delete(context, name));
  }

  async forgetCompleted(_context: RequestContext, completedBeforeMs: number, keep: ReadonlySet<string>): Promise<void> {
    const forgotten = this.memory.forgetCompletedNow(completedBeforeMs, keep);
    if (forgotten.length > 0) this.markDirty(forgotten);
  }

  putWorker(
    context: RequestContext,
    worker: Omit<WorkerRecord, 'draining' | 'goneAtMs'>,
    nowMs: number,
  ): Promise<void> {
    return this.memory.putWorker(context, worker, nowMs);
  }

  markWorkerGone(context: RequestContext, workerId: string, nowMs: number): Promise<boolean> {
    return this.memory.markWorkerGone(context, workerId, nowMs);
  }

  setDraining(context: RequestContext, workerId: string, draining: boolean): Promise<boolean> {
    return this.memory.setDraining(context, workerId, draining);
  }

  listWorkers(context: RequestContext): Promise<WorkerRecord[]> {
    return this.memory.listWorkers(context);
  }

  queues(context: RequestContext): Promise<PlatformQueue[]> {
    return this.memory.queues(context);
  }

  /**
   * Stops saving after changes and writes the whole state into the snapshot (the
   * journal is removed). May be called again after it failed.
   */
  async close(): Promise<void> {
    this.closed = true;
    while (this.writing) await this.writing.catch(() => {});
    await this.journal.closeWith(this.memory.entries());
    this.dirty.clear();
  }

  /** Writes every pending change now; resolves once it is on disk (rejects if that failed). */
  async save(): Promise<void> {
    for (;;) {
      if (this.writing) {
        await this.writing.catch(() => {});
        continue;
      }
      if (this.dirty.size === 0 || this.closed) return;
      // This write's failure is the caller's to see (the background writer only logs).
      await this.track(this.writePending());
    }
  }

  /** Passes a result through, marking what it changed to be written. */
  private changed<T extends OperationRecord | OperationRecord[] | undefined>(result: T): T {
    if (result === undefined) return result;
    this.markDirty(Array.isArray(result) ? result.map((r) => r.name) : [result.name]);
    return result;
  }

  private markDirty(names: readonly string[]): void {
    if (this.closed) return;
    for (const name of names) this.dirty.add(name);
    this.startWriting();
  }

  /** Starts the background writer unless a write is running (it, or its end, picks up what is pending). */
  private startWriting(): void {
    if (this.writing || this.closed || this.dirty.size === 0) return;
    // The changes stay pending after a failure: the next change (or save, or close) tries again.
    this.track(this.writeWhileDirty()).catch((error: unknown) =>
      console.error('granary: saving scheduler state failed:', error),
    );
  }

  /** Makes `write` the one write in progress; when it succeeds, whatever became pending meanwhile is written next. */
  private track(write: Promise<void>): Promise<void> {
    const tracked = write.then(
      () => {
        this.writing = undefined;
        this.startWriting();
      },
      (error: unknown) => {
        this.writing = undefined;
        throw error;
      },
    );
    this.writing = tracked;
    return tracked;
  }

  private async writeWhileDirty(): Promise<void> {
    // Let the other changes of this turn of the event loop join the first write.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.dirty.size > 0 && !this.closed) await this.writePending();
  }

  /** One write: the pending changes appended to the journal, or a new snapshot when the journal is due. */
  private async writePending(): Promise<void> {
    const names = [...this.dirty];
    this.dirty.clear();
    try {
      const due = Math.max(COMPACT_FLOOR_BYTES, COMPACT_RATIO * this.journal.lastSnapshotBytes);
      if (!this.journal.open || this.journal.appendedBytes > due) {
        await this.journal.compact(this.memory.entries());
        return;
      }
      const records: JournalRecord[] = names.map((name) => {
        const entry = this.memory.entry(name);
        return entry ? { put: entry } : { delete: name };
      });
      await this.journal.append(records);
    } catch (error) {
      for (const name of names) this.dirty.add(name);
      // A failed append may have left part of a line: start afresh from a snapshot next time.
      await this.journal.abandon();
      throw error;
    }
  }
}
