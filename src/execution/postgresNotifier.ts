/**
 * The notifier of a frontend sharing its scheduler with others through
 * PostgreSQL. Changes made here are delivered here at once (with the record);
 * every frontend's changes, this one's included, also arrive through LISTEN, as
 * PostgresOperationStore announces them with NOTIFY inside the transaction that
 * makes them, so an announcement goes out exactly when the change commits. News
 * from the database carries a name and a version; the scheduler reads the record
 * and drops news it has already seen.
 *
 * When the LISTEN connection breaks, notifications sent meanwhile are lost; after
 * it subscribes again, every watched operation is re-read (news with an unbounded
 * version) and every idle worker is woken to look for work, so no wake-up is lost.
 */
import type { PostgresDatabase } from '../database/postgresDatabase.js';
import { type ListenerOptions, PostgresListener } from '../database/postgresListener.js';
import { CHANNELS } from '../database/schema.js';
import { InProcessNotifier, type Notifier, type OperationChange } from './notifier.js';

export class PostgresNotifier implements Notifier {
  private readonly local = new InProcessNotifier();
  private readonly listener: PostgresListener;

  constructor(database: PostgresDatabase, options: ListenerOptions = {}) {
    this.listener = new PostgresListener(
      database,
      [CHANNELS.operation, CHANNELS.work],
      {
        onNotification: (channel, payload) => this.received(channel, payload),
        onSubscribed: () => this.resynchronize(),
      },
      options,
    );
  }

  /** Whether notifications from other frontends can arrive now. */
  get listening(): boolean {
    return this.listener.connected;
  }

  publishOperation(change: OperationChange): void {
    this.local.publishOperation(change);
  }

  subscribeOperation(name: string, listener: (change: OperationChange) => void): () => void {
    return this.local.subscribeOperation(name, listener);
  }

  publishWork(): void {
    this.local.publishWork();
  }

  waitForWork(timeoutMs: number, signal: AbortSignal): Promise<void> {
    return this.local.waitForWork(timeoutMs, signal);
  }

  close(): void {
    this.local.close();
    void this.listener.close();
  }

  private received(channel: string, payload: string): void {
    if (channel === CHANNELS.work) {
      this.local.publishWork();
      return;
    }
    if (channel !== CHANNELS.operation) return;
    const space = payload.indexOf(' ');
    const version = Number(payload.slice(0, space));
    const name = payload.slice(space + 1);
    if (space <= 0 || !Number.isSafeInteger(version) || name === '') return;
    this.local.publishOperation({ name, version });
  }

  private resynchronize(): void {
    for (const name of this.local.subscribedOperations()) {
      this.local.publishOperation({ name, version: Number.MAX_SAFE_INTEGER });
    }
    this.local.publishWork();
  }
}
