/**
 * The memory store saved to a JSON file after changes (batched, and atomically:
 * written to a temporary file, flushed, renamed), so a restarted server keeps
 * every operation it accepted. After a restart, operations that were running go
 * back to the queue; their workers reconnect with new sessions. Workers are not
 * saved: they announce themselves again. An unreadable file is set aside and the
 * store starts empty.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { RequestContext } from '../context/requestContext.js';
import { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { MemoryOperationStore, type StoredOperation } from './memoryOperationStore.js';
import type { Enqueued, OperationPage, OperationQuery, OperationStore, PlatformQueue } from './operationStore.js';
import type { SchedulingPolicy } from './schedulingPolicy.js';
import type { ActionRequest, OperationRecord, WorkerRecord } from './types.js';

/** How long changes gather before one save. */
const SAVE_DELAY_MS = 100;

/** One operation in the file: the stored entry, its response as base64 protobuf. */
type SavedOperation = Omit<StoredOperation, 'response'> & { response?: string };

export class FileOperationStore implements OperationStore {
  private saveTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    private readonly memory: MemoryOperationStore,
    private readonly file: string,
  ) {}

  /** Opens the store saved in `file` (empty when the file does not exist yet). */
  static async open(file: string, policy: SchedulingPolicy): Promise<FileOperationStore> {
    const memory = new MemoryOperationStore(policy);
    memory.restore(await load(file));
    return new FileOperationStore(memory, file);
  }

  async enqueue(context: RequestContext, request: ActionRequest, nowMs: number): Promise<Enqueued> {
    return this.changed(await this.memory.enqueue(context, request, nowMs));
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

  async forgetCompleted(context: RequestContext, completedBeforeMs: number, keep: ReadonlySet<string>): Promise<void> {
    await this.memory.forgetCompleted(context, completedBeforeMs, keep);
    this.scheduleSave();
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

  /** Stops saving after changes and writes the state one last time. */
  async close(): Promise<void> {
    this.closed = true;
    // A save still pending would write after close (over the state of a reopened store).
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    await this.save();
  }

  /** Writes the current state now; resolves once it is on disk. */
  save(): Promise<void> {
    const records: SavedOperation[] = this.memory.entries().map((entry) => ({
      ...entry,
      response: entry.response
        ? Buffer.from(ExecuteResponse.encode(entry.response).finish()).toString('base64')
        : undefined,
    }));
    const text = JSON.stringify({ version: 1, operations: records });
    const file = this.file;
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

  /** Passes a result through, saving soon if anything changed. */
  private changed<T>(result: T): T {
    const nothing = result === undefined || (Array.isArray(result) && result.length === 0);
    if (!nothing) this.scheduleSave();
    return result;
  }

  private scheduleSave(): void {
    if (this.saveTimer || this.closed) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.save().catch((error: unknown) => console.error('granary: saving scheduler state failed:', error));
    }, SAVE_DELAY_MS);
    this.saveTimer.unref();
  }
}

/** Reads saved operations; an unreadable file is moved aside (to `.unreadable`) and nothing is loaded. */
async function load(file: string): Promise<StoredOperation[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return []; // No state yet.
  }
  try {
    const parsed = JSON.parse(text) as { operations?: SavedOperation[] } | null;
    const records = parsed?.operations ?? [];
    if (!Array.isArray(records)) throw new Error('"operations" is not a list');
    return records.map((raw): StoredOperation => {
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
  } catch (error) {
    // Start empty rather than half-loaded; keep the unreadable file aside for inspection.
    const aside = `${file}.unreadable`;
    await rename(file, aside).catch(() => {});
    console.error(`granary: ignoring unreadable scheduler state (moved to ${aside}):`, error);
    return [];
  }
}
