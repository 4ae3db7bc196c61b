/**
 * One frontend's connection to the farm's PostgreSQL: a pool, the schema migrated
 * on open, and the one way to run statements, which waits out a database that is
 * restarting. A statement or transaction that fails with a transient error (see
 * databaseErrors.ts) is retried with backoff until it succeeds, the caller's
 * context ends, or `retryWindowMs` passes; then the caller gets UNAVAILABLE, never
 * a crash. Transactions are retried whole, so their work must be safe to run again
 * after an attempt whose COMMIT may or may not have happened: each gets its attempt
 * number to check for its own earlier success (see PostgresOperationStore).
 */
import pg from 'pg';
import { backgroundContext, type RequestContext, throwIfAborted } from '../context/requestContext.js';
import { Backoff } from '../util/backoff.js';
import { Code, StatusError } from '../util/status.js';
import { isTransientDatabaseError } from './databaseErrors.js';
import { ADVISORY_LOCKS, MIGRATIONS, type Migration } from './schema.js';

/** How to reach the database and how patient to be with it. */
export interface DatabaseOptions {
  /** postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE (any URL the `pg` client accepts). */
  url: string;
  /** Connections in the pool; default 10. */
  maximumConnections?: number;
  /** How long a call waits for an unavailable database before failing with UNAVAILABLE; default 30 s. */
  retryWindowMs?: number;
  /** A statement running longer than this is cancelled by the server; default 30 s. */
  statementTimeoutMs?: number;
  /** Shown in pg_stat_activity; default `granary`. */
  applicationName?: string;
  /** Where problems are reported (a reconnect, a failed idle connection); default console.error. */
  log?: (message: string) => void;
  /** Migrations to apply (tests give others); default the farm's schema. */
  migrations?: readonly Migration[];
}

/** A statement runner inside one transaction. */
export interface Transaction {
  query<Row extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** 0 on the first attempt; higher when an earlier attempt failed, perhaps after committing. */
  readonly attempt: number;
}

const FIRST_BACKOFF_MS = 50;
const MAXIMUM_BACKOFF_MS = 1000;

export class PostgresDatabase {
  /** The client settings every connection of this database uses (the listener makes its own from them). */
  readonly clientConfig: pg.ClientConfig;
  readonly retryWindowMs: number;
  readonly log: (message: string) => void;
  private readonly pool: pg.Pool;
  private closed = false;
  private lastOutageLogMs = 0;

  private constructor(options: DatabaseOptions) {
    this.log = options.log ?? ((message) => console.error(message));
    this.retryWindowMs = options.retryWindowMs ?? 30_000;
    this.clientConfig = {
      connectionString: options.url,
      application_name: options.applicationName ?? 'granary',
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      // A frontend stopped in the middle of a transaction must not hold its locks for long.
      idle_in_transaction_session_timeout: 60_000,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
    };
    this.pool = new pg.Pool({ ...this.clientConfig, max: options.maximumConnections ?? 10 });
    // An idle connection that breaks (the server restarted) is dropped by the pool; without a
    // listener the error would end the process.
    this.pool.on('error', (error) => this.noteOutage(`granary: an idle database connection failed: ${error.message}`));
  }

  /**
   * Connects (waiting up to the retry window for a database that is not up yet) and
   * applies the migrations the database lacks. Fails when the database's schema is
   * newer than this program knows.
   */
  static async open(options: DatabaseOptions): Promise<PostgresDatabase> {
    const database = new PostgresDatabase(options);
    try {
      await database.migrate(options.migrations ?? MIGRATIONS);
    } catch (error) {
      await database.close();
      throw error;
    }
    return database;
  }

  /** Runs one statement on its own (autocommit). Only for statements that are safe to repeat. */
  async query<Row extends pg.QueryResultRow = pg.QueryResultRow>(
    context: RequestContext,
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<Row[]> {
    return this.retrying(context, async () => (await this.pool.query<Row>(sql, params as unknown[])).rows);
  }

  /**
   * Runs `work` in a transaction (READ COMMITTED) and commits it; retried whole after
   * transient failures (see the file comment). A non-transient error rolls back and
   * is thrown as it is.
   */
  async transaction<T>(context: RequestContext, work: (transaction: Transaction) => Promise<T>): Promise<T> {
    return this.retrying(context, async (attempt) => {
      const client = await this.pool.connect();
      let healthy = true;
      try {
        await client.query('BEGIN');
        const result = await work({
          attempt,
          query: async <Row extends pg.QueryResultRow>(sql: string, params: readonly unknown[] = []) =>
            (await client.query<Row>(sql, params as unknown[])).rows,
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        // A broken connection is thrown away; a healthy one is rolled back and reused.
        healthy =
          !isTransientDatabaseError(error) &&
          (await client.query('ROLLBACK').then(
            () => true,
            () => false,
          ));
        throw error;
      } finally {
        client.release(healthy ? undefined : true);
      }
    });
  }

  /** A client of its own (outside the pool), for LISTEN; the caller ends it. */
  newClient(applicationSuffix: string): pg.Client {
    return new pg.Client({
      ...this.clientConfig,
      application_name: `${this.clientConfig.application_name}-${applicationSuffix}`,
    });
  }

  /** Closes the pool; calls still running fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  /** Runs `attempt` until it succeeds, fails for good, or the wait is over (UNAVAILABLE). */
  private async retrying<T>(context: RequestContext, run: (attempt: number) => Promise<T>): Promise<T> {
    const startedMs = Date.now();
    const backoff = new Backoff({ firstMs: FIRST_BACKOFF_MS, maximumMs: MAXIMUM_BACKOFF_MS });
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(context);
      if (this.closed) throw new StatusError(Code.UNAVAILABLE, 'the database connection is closed');
      try {
        return await run(attempt);
      } catch (error) {
        if (!isTransientDatabaseError(error)) throw error;
        const message = (error as Error).message;
        const backoffMs = backoff.next();
        const resumeMs = Date.now() + backoffMs;
        const deadlineMs = Math.min(context.deadlineMs ?? Number.POSITIVE_INFINITY, startedMs + this.retryWindowMs);
        if (resumeMs >= deadlineMs || this.closed) {
          throw new StatusError(Code.UNAVAILABLE, `the database is unavailable: ${message}`);
        }
        this.noteOutage(`granary: the database is unavailable (${message}); retrying`);
        await sleep(backoffMs, context.signal);
      }
    }
  }

  /** Logs an outage at most once every few seconds, however many calls notice it. */
  private noteOutage(message: string): void {
    const now = Date.now();
    if (now - this.lastOutageLogMs < 5000) return;
    this.lastOutageLogMs = now;
    this.log(message);
  }

  /**
   * Applies missing migrations in one transaction under an advisory lock, so that
   * frontends starting together wait for each other and each migration runs once.
   */
  private async migrate(migrations: readonly Migration[]): Promise<void> {
    const known = Math.max(0, ...migrations.map((m) => m.version));
    await this.transaction(backgroundContext(), async (transaction) => {
      await transaction.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.migrate]);
      await transaction.query(
        `CREATE TABLE IF NOT EXISTS granary_schema_migrations (
           version integer PRIMARY KEY,
           description text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const rows = await transaction.query<{ version: number | null }>(
        'SELECT max(version) AS version FROM granary_schema_migrations',
      );
      const current = rows[0]?.version ?? 0;
      if (current > known) {
        throw new StatusError(
          Code.FAILED_PRECONDITION,
          `the database's schema is at version ${current}, newer than this granary knows (${known}): upgrade granary`,
        );
      }
      for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
        if (migration.version <= current) continue;
        await transaction.query(migration.sql);
        await transaction.query('INSERT INTO granary_schema_migrations (version, description) VALUES ($1, $2)', [
          migration.version,
          migration.description,
        ]);
      }
    });
  }
}

/** Resolves after `ms`, or at once when the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
