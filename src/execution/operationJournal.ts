/**
 * The scheduler's state on disk as a snapshot plus an append-only journal, so
 * that saving a change costs in proportion to the change, not to the hour of
 * history the scheduler keeps (rewriting every operation after every change did).
 *
 *   FILE            {"version":1,"generation":G,"operations":[...]}: the snapshot,
 *                   replaced atomically (temporary file, flushed, renamed)
 *   FILE.journal    a header line {"generation":G}, then one line per change:
 *                   {"put":OPERATION} (its whole current state) or {"delete":NAME}
 *
 * Records are whole states, so replaying them is idempotent and a prefix of the
 * journal is a consistent earlier state. Compaction writes a new snapshot with
 * generation G+1 and then starts a journal with header G+1: a crash between the
 * two leaves a journal of the old generation, which the next load ignores (the
 * snapshot already holds everything in it). A crash in the middle of an append
 * leaves a torn last line, which is ignored; a bad line before the end stops the
 * replay there (what came before still applies) and the journal is set aside.
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { StoredOperation } from './memoryOperationStore.js';

/** One operation as written: the stored entry, its response as base64 protobuf. */
type SavedOperation = Omit<StoredOperation, 'response'> & { response?: string };

/** A change to write: an operation's current state, or the name of one forgotten. */
export type JournalRecord = { put: StoredOperation } | { delete: string };

/** What a load found. */
export interface LoadedState {
  operations: StoredOperation[];
  /** The snapshot's generation (0 when there was none). */
  generation: number;
}

const JOURNAL_SUFFIX = '.journal';
const TRUNCATE_AND_APPEND = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_APPEND;

export class OperationJournal {
  private handle: FileHandle | undefined;
  private journalBytes = 0;
  private snapshotBytes = 0;

  constructor(
    private readonly file: string,
    private generation: number,
  ) {}

  /** Bytes appended since the last compaction; compact when this outgrows the snapshot. */
  get appendedBytes(): number {
    return this.journalBytes;
  }

  /** Size of the last snapshot written (0 before the first compaction). */
  get lastSnapshotBytes(): number {
    return this.snapshotBytes;
  }

  /** Whether there is a journal of this generation to append to (false until the first compaction). */
  get open(): boolean {
    return this.handle !== undefined;
  }

  /**
   * Reads the snapshot and replays its journal. An unreadable snapshot is moved
   * aside (to FILE.unreadable) and nothing is loaded.
   */
  static async load(file: string): Promise<LoadedState> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return { operations: [], generation: 0 }; // No state yet.
    }
    const byName = new Map<string, StoredOperation>();
    let generation = 0;
    try {
      const parsed = JSON.parse(text) as { generation?: unknown; operations?: SavedOperation[] } | null;
      const records = parsed?.operations ?? [];
      if (!Array.isArray(records)) throw new Error('"operations" is not a list');
      for (const raw of records) {
        const operation = decodeOperation(raw);
        byName.set(operation.name, operation);
      }
      generation = typeof parsed?.generation === 'number' ? parsed.generation : 0;
    } catch (error) {
      // Start empty rather than half-loaded; keep the unreadable file aside for inspection.
      const aside = `${file}.unreadable`;
      await rename(file, aside).catch(() => {});
      console.error(`granary: ignoring unreadable scheduler state (moved to ${aside}):`, error);
      return { operations: [], generation: 0 };
    }
    await replayJournal(file, generation, byName);
    return { operations: [...byName.values()], generation };
  }

  /** Appends records and flushes them to disk. Only after compact() has started this generation's journal. */
  async append(records: readonly JournalRecord[]): Promise<void> {
    if (!this.handle) throw new Error('the journal is not open; compact first');
    if (records.length === 0) return;
    const text = records.map((record) => `${JSON.stringify(encodeRecord(record))}\n`).join('');
    const data = Buffer.from(text);
    await this.handle.write(data);
    await this.handle.datasync();
    this.journalBytes += data.length;
  }

  /**
   * Writes every operation as a new snapshot of the next generation, then starts
   * an empty journal of that generation (replacing the old one).
   */
  async compact(operations: readonly StoredOperation[]): Promise<void> {
    await this.writeSnapshot(operations);
    // Truncated, and appended to only: every write lands at the end, whatever else wrote there.
    const handle = await open(`${this.file}${JOURNAL_SUFFIX}`, TRUNCATE_AND_APPEND);
    try {
      await handle.write(Buffer.from(`${JSON.stringify({ generation: this.generation })}\n`));
      await handle.datasync();
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
    this.handle = handle;
    this.journalBytes = 0;
  }

  /**
   * Writes a final snapshot and removes the journal, leaving the state in one
   * file. May be retried after it failed.
   */
  async closeWith(operations: readonly StoredOperation[]): Promise<void> {
    await this.writeSnapshot(operations);
    await unlink(`${this.file}${JOURNAL_SUFFIX}`).catch(() => {});
  }

  /** Stops appending (the next append needs a compaction first), e.g. after a failed write. */
  async abandon(): Promise<void> {
    await this.closeHandle();
  }

  /** A snapshot of the next generation; the journal of the previous one is closed (and stale from now on). */
  private async writeSnapshot(operations: readonly StoredOperation[]): Promise<void> {
    const next = this.generation + 1;
    const text = JSON.stringify({ version: 1, generation: next, operations: operations.map(encodeOperation) });
    await this.closeHandle();
    await mkdir(dirname(this.file), { recursive: true });
    await writeAtomically(this.file, text);
    this.generation = next;
    this.snapshotBytes = Buffer.byteLength(text);
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => {});
  }
}

/** Applies the journal of `generation` to the loaded operations; ignores a journal of another generation. */
async function replayJournal(file: string, generation: number, byName: Map<string, StoredOperation>): Promise<void> {
  const journalFile = `${file}${JOURNAL_SUFFIX}`;
  let text: string;
  try {
    text = await readFile(journalFile, 'utf8');
  } catch {
    return; // No journal: the snapshot is the whole state.
  }
  const lines = text.split('\n');
  // The part after the last newline is a torn append (or empty): never acknowledged, ignored.
  lines.pop();
  const header = lines.shift();
  try {
    if ((JSON.parse(header ?? '') as { generation?: unknown }).generation !== generation) return; // Stale.
  } catch {
    return; // A header torn while a compaction started the journal: nothing was appended to it.
  }
  for (const [index, line] of lines.entries()) {
    try {
      const record = JSON.parse(line) as { put?: SavedOperation; delete?: unknown };
      if (record.put !== undefined) {
        const operation = decodeOperation(record.put);
        byName.set(operation.name, operation);
      } else if (typeof record.delete === 'string') {
        byName.delete(record.delete);
      } else {
        throw new Error('neither put nor delete');
      }
    } catch (error) {
      const aside = `${journalFile}.unreadable`;
      await rename(journalFile, aside).catch(() => {});
      console.error(
        `granary: scheduler journal line ${index + 2} is unreadable; ` +
          `the changes before it were kept, the rest ignored (moved to ${aside}):`,
        error,
      );
      return;
    }
  }
}

function encodeRecord(record: JournalRecord): { put: SavedOperation } | { delete: string } {
  return 'put' in record ? { put: encodeOperation(record.put) } : record;
}

function encodeOperation(operation: StoredOperation): SavedOperation {
  return {
    ...operation,
    response: operation.response
      ? Buffer.from(ExecuteResponse.encode(operation.response).finish()).toString('base64')
      : undefined,
  };
}

function decodeOperation(raw: SavedOperation): StoredOperation {
  if (
    !raw ||
    typeof raw.name !== 'string' ||
    !raw.request?.actionDigest ||
    !['QUEUED', 'EXECUTING', 'COMPLETED'].includes(raw.stage)
  ) {
    throw new Error('malformed operation record');
  }
  return { ...raw, response: raw.response ? ExecuteResponse.decode(Buffer.from(raw.response, 'base64')) : undefined };
}

/** Flushed before the rename, so a crash of the machine leaves the old or the new file, never an empty one. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temporary = `${file}.${randomUUID()}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw error;
  }
  await handle.close();
  await rename(temporary, file);
}
