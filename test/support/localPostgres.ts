/**
 * A real PostgreSQL (Debian's postgresql 15) on this machine's loopback, for unit and
 * contract tests of the database-backed stores: a fresh cluster in a temporary
 * directory made with initdb as the `postgres` account (initdb refuses root), on a
 * free port, with its socket in its own directory, so it never meets the system's
 * cluster or another test's. Tests get a fresh database each (createDatabase) and can
 * stop, start and restart the server to see what a database outage does.
 *
 * Without root or without PostgreSQL installed the tests skip (see
 * localPostgresSkipReason), except in CI (`CI` set), where they must run.
 */

import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import pg from 'pg';
import { HostProcess } from './hosts/hostProcess.js';
import { postgresBinDirectory } from './hosts/postgres.js';
import { accountIds, systemProgram } from './hosts/system.js';

const account = 'postgres';

/** Why the local PostgreSQL tests cannot run here, or undefined when they can (always in CI). */
export function localPostgresSkipReason(): string | undefined {
  if (process.env.CI) return undefined;
  if (process.getuid?.() !== 0) return 'a local PostgreSQL for tests needs root (initdb runs as the postgres account)';
  if (!existsSync(join(postgresBinDirectory, 'postgres'))) return 'PostgreSQL 15 is not installed';
  return undefined;
}

/** Makes a cluster and starts it; call close() when done. */
export async function startLocalPostgres(): Promise<LocalPostgres> {
  const server = new LocalPostgres(mkdtempSync(join(tmpdir(), 'granary-postgres-')), await freePort());
  try {
    server.initialise();
    await server.start();
  } catch (error) {
    await server.close();
    throw error;
  }
  return server;
}

/**
 * The local PostgreSQL of a test file: started before its tests and closed after
 * them, unless `skip` says why it cannot run here; `server()` is it once started.
 */
export function useLocalPostgres(): { skip: string | undefined; server: () => LocalPostgres } {
  const skip = localPostgresSkipReason();
  let started: LocalPostgres | undefined;
  before(async () => {
    if (!skip) started = await startLocalPostgres();
  });
  after(async () => {
    await started?.close();
  });
  const server = () => {
    if (!started) throw new Error('the local PostgreSQL is not running');
    return started;
  };
  return { skip, server };
}

/** A PostgreSQL cluster on 127.0.0.1; made by startLocalPostgres(). */
export class LocalPostgres {
  private postmaster: HostProcess | undefined;
  private databases = 0;

  constructor(
    private readonly baseDirectory: string,
    readonly port: number,
  ) {}

  /** A URL for the `pg` client and `granary serve --database`. */
  url(database = 'postgres'): string {
    return `postgresql://${account}@127.0.0.1:${this.port}/${database}`;
  }

  /** Creates a database with a fresh name and returns its URL. */
  async createDatabase(): Promise<string> {
    const name = `granary_test_${++this.databases}`;
    await this.sql(`CREATE DATABASE ${name}`);
    return this.url(name);
  }

  /**
   * A fresh, empty place for a farm's tables, much faster to make than a database: a
   * schema of the `postgres` database, chosen by the URL's search_path. Returns the URL.
   */
  async createSchema(): Promise<string> {
    const name = `granary_test_${++this.databases}`;
    await this.sql(`CREATE SCHEMA ${name}`);
    return `${this.url()}?options=${encodeURIComponent(`-c search_path=${name}`)}`;
  }

  /** Runs SQL as the superuser in `database` and returns the rows. */
  async sql(statement: string, database = 'postgres'): Promise<Record<string, unknown>[]> {
    const client = new pg.Client({ connectionString: this.url(database) });
    await client.connect();
    try {
      return (await client.query(statement)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }

  /** Whether the server is running. */
  get running(): boolean {
    return this.postmaster?.running ?? false;
  }

  initialise(): void {
    const { uid, gid } = accountIds(account);
    chownSync(this.baseDirectory, uid, gid);
    mkdirSync(this.socketDirectory, { mode: 0o700 });
    chownSync(this.socketDirectory, uid, gid);
    const result = spawnSync(
      systemProgram('setpriv'),
      [
        ...asAccount(),
        join(postgresBinDirectory, 'initdb'),
        '-D',
        this.dataDirectory,
        '-U',
        account,
        '--auth=trust',
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
      ],
      { encoding: 'utf8', cwd: this.baseDirectory, timeout: 120_000 },
    );
    if (result.status !== 0) throw new Error(`initdb failed: ${result.stderr}${result.error?.message ?? ''}`);
  }

  /** Starts the server (again), on the same data and port; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.running) throw new Error('PostgreSQL is running already');
    const settings = {
      listen_addresses: '127.0.0.1',
      port: String(this.port),
      unix_socket_directories: this.socketDirectory,
      fsync: 'off',
      max_connections: '200',
    };
    const child = spawn(
      systemProgram('setpriv'),
      [
        ...asAccount(),
        join(postgresBinDirectory, 'postgres'),
        '-D',
        this.dataDirectory,
        ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
      ],
      { cwd: this.baseDirectory, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.postmaster = new HostProcess('localhost', 'postgres', child);
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (!this.postmaster.running) throw this.postmaster.failure('exited before accepting connections');
      const ready = spawnSync(
        join(postgresBinDirectory, 'pg_isready'),
        ['-q', '-h', '127.0.0.1', '-p', String(this.port), '-U', account],
        { timeout: 10_000 },
      );
      if (ready.status === 0) return;
      if (Date.now() > deadline) throw this.postmaster.failure('did not accept connections within 2 minutes');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Fast shutdown (sessions are ended, everything committed is kept); waits for the exit. */
  async stop(): Promise<void> {
    const postmaster = this.postmaster;
    if (!postmaster?.running) return;
    postmaster.kill('SIGINT', 'leader');
    await postmaster.exited;
  }

  /** Stops the server and removes its cluster. */
  async close(): Promise<void> {
    const postmaster = this.postmaster;
    if (postmaster?.running) {
      postmaster.kill('SIGINT', 'leader');
      const timer = setTimeout(() => postmaster.kill('SIGKILL'), 10_000);
      await postmaster.exited;
      clearTimeout(timer);
    }
    rmSync(this.baseDirectory, { recursive: true, force: true });
  }

  private get dataDirectory(): string {
    return join(this.baseDirectory, 'data');
  }

  private get socketDirectory(): string {
    return join(this.baseDirectory, 'socket');
  }
}

/** setpriv's arguments to run the rest of the command line as the postgres account (it execs, keeping the pid). */
function asAccount(): string[] {
  const { uid, gid } = accountIds(account);
  return [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--'];
}

/** A TCP port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
