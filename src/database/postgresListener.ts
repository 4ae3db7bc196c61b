/**
 * A LISTEN connection that stays subscribed: when it breaks (the database
 * restarted, the network dropped it, or a health check found it silent), it
 * connects again with backoff, subscribes again, and then calls `onSubscribed`,
 * so that its owner can re-read whatever may have changed while no notification
 * could arrive. Nothing is missed that way: a change committed before the new
 * LISTEN is found by that re-read, and any later one is notified.
 */
import type pg from 'pg';
import type { PostgresDatabase } from './postgresDatabase.js';

export interface ListenerHandlers {
  onNotification(channel: string, payload: string): void;
  /** Called after every (re)subscription, the first included. */
  onSubscribed(): void;
}

export interface ListenerOptions {
  /** Wait before the first reconnection attempt (doubling up to 2 s); default 100 ms. */
  reconnectDelayMs?: number;
  /** How often the connection is checked with a trivial query; default 5 s. */
  healthCheckIntervalMs?: number;
}

export class PostgresListener {
  private client: pg.Client | undefined;
  private closed = false;
  private connectedState = false;
  private healthTimer: NodeJS.Timeout | undefined;
  private wakeReconnect: (() => void) | undefined;
  private readonly running: Promise<void>;

  constructor(
    private readonly database: PostgresDatabase,
    private readonly channels: readonly string[],
    private readonly handlers: ListenerHandlers,
    private readonly options: ListenerOptions = {},
  ) {
    for (const channel of channels) {
      if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`channel ${channel} is not a plain identifier`);
    }
    this.running = this.run();
  }

  /** Whether it is connected and subscribed now. */
  get connected(): boolean {
    return this.connectedState;
  }

  /** Stops listening and ends the connection. */
  async close(): Promise<void> {
    this.closed = true;
    this.wakeReconnect?.();
    this.dropConnection();
    await this.running;
  }

  private async run(): Promise<void> {
    const firstDelayMs = this.options.reconnectDelayMs ?? 100;
    let delayMs = firstDelayMs;
    while (!this.closed) {
      const dropped = await this.connectOnce();
      if (this.closed) break;
      if (dropped) {
        // It was up: wait for it to break before trying again.
        await dropped;
        if (this.closed) break;
        this.database.log('granary: lost the database notification connection; reconnecting');
        delayMs = firstDelayMs;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wakeReconnect = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeReconnect = undefined;
      delayMs = Math.min(delayMs * 2, 2000);
    }
  }

  /** Connects and subscribes; returns a promise that settles when the connection breaks, or undefined if it failed. */
  private async connectOnce(): Promise<Promise<void> | undefined> {
    const client = this.database.newClient('listener');
    let markDropped: () => void = () => {};
    const dropped = new Promise<void>((resolve) => {
      markDropped = resolve;
    });
    const onBroken = () => {
      if (this.client === client) {
        this.client = undefined;
        this.connectedState = false;
        clearInterval(this.healthTimer);
        client.end().catch(() => {});
      }
      markDropped();
    };
    client.on('error', onBroken);
    client.on('end', onBroken);
    client.on('notification', (message) => {
      if (this.client === client) this.handlers.onNotification(message.channel, message.payload ?? '');
    });
    this.client = client;
    try {
      await client.connect();
      for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
    } catch {
      onBroken();
      return undefined;
    }
    if (this.client !== client || this.closed) {
      onBroken();
      return undefined;
    }
    this.connectedState = true;
    this.startHealthChecks(client, onBroken);
    this.handlers.onSubscribed();
    return dropped;
  }

  /** A connection whose peer vanished without a reset only shows it when used: use it now and then. */
  private startHealthChecks(client: pg.Client, onBroken: () => void): void {
    const intervalMs = this.options.healthCheckIntervalMs ?? 5000;
    let checking = false;
    this.healthTimer = setInterval(() => {
      if (checking) return;
      checking = true;
      const timeout = setTimeout(onBroken, intervalMs * 2);
      client
        .query('SELECT 1')
        .then(
          () => clearTimeout(timeout),
          () => {
            clearTimeout(timeout);
            onBroken();
          },
        )
        .finally(() => {
          checking = false;
        });
    }, intervalMs);
    this.healthTimer.unref();
  }

  private dropConnection(): void {
    const client = this.client;
    this.client = undefined;
    this.connectedState = false;
    clearInterval(this.healthTimer);
    client?.end().catch(() => {});
  }
}
