/**
 * A real PostgreSQL server (Debian's postgresql 15) in a test host, for the tests of the
 * farm's shared state: created with initdb as the `postgres` account (initdb refuses root),
 * listening on every address of its host with trust authentication for the test network,
 * and started, stopped, killed and restarted by the test like a database machine would be.
 * The postmaster runs in the foreground as a child of the test, so its output is kept and
 * killing its process group takes every backend with it.
 */
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostProcess } from './hostProcess.js';
import { accountIds } from './system.js';
import type { TestHost } from './testHost.js';

/** Where Debian installs PostgreSQL 15's programs (they are not on PATH). */
export const postgresBinDirectory = '/usr/lib/postgresql/15/bin';

const account = 'postgres';

/** Options for startPostgres(). */
export interface PostgresOptions {
  /** TCP port inside the host; default 5432 (every host has its own ports). */
  port?: number;
  /** Extra server settings (`-c NAME=VALUE`), e.g. { max_connections: '200' }. */
  settings?: Record<string, string>;
  /** How long to wait for the server to accept connections; default 120 s (initdb and recovery are slow on a loaded machine). */
  readyTimeoutMs?: number;
}

/**
 * Initialises a fresh cluster in the run's work directory and starts it in `host`; resolves
 * once it accepts connections (checked over the host's loopback).
 */
export async function startPostgres(host: TestHost, options: PostgresOptions = {}): Promise<PostgresServer> {
  const port = options.port ?? 5432;
  const baseDirectory = join(host.workDirectory, `postgres-${host.name}-${port}`);
  const server = new PostgresServer(
    host,
    port,
    baseDirectory,
    options.settings ?? {},
    options.readyTimeoutMs ?? 120_000,
  );
  await server.initialise();
  await server.start();
  return server;
}

/** A PostgreSQL server in a test host; made by startPostgres(). */
export class PostgresServer {
  /** The account the server runs as and the superuser clients connect as (no password). */
  readonly user = account;
  private postmaster: HostProcess | undefined;

  constructor(
    readonly host: TestHost,
    readonly port: number,
    private readonly baseDirectory: string,
    private readonly settings: Record<string, string>,
    private readonly readyTimeoutMs: number,
  ) {}

  /** The cluster's data directory. */
  get dataDirectory(): string {
    return join(this.baseDirectory, 'data');
  }

  /** Where the server puts its Unix socket (instead of /run/postgresql, shared by every run). */
  get socketDirectory(): string {
    return join(this.baseDirectory, 'socket');
  }

  /** The postmaster while it runs. */
  get process(): HostProcess {
    if (this.postmaster === undefined) throw new Error('PostgreSQL is not running');
    return this.postmaster;
  }

  /** A URL for clients in any host or in the test process, e.g. postgresql://postgres@10.77.3.2:5432/granary. */
  connectionString(database = 'postgres'): string {
    return `postgresql://${this.user}@${this.host.address}:${this.port}/${database}`;
  }

  /** Runs SQL with psql from `fromHost` (default: the server's own host, over TCP); returns its unaligned output. */
  async psql(sql: string, database = 'postgres', fromHost: TestHost = this.host): Promise<string> {
    const target = fromHost === this.host ? '127.0.0.1' : this.host.address;
    const args = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', target, '-p', String(this.port)];
    const { stdout } = await fromHost.run(join(postgresBinDirectory, 'psql'), [...args, '-U', this.user, database], {
      input: sql,
    });
    return stdout;
  }

  /** Creates a database (the farm's, typically). */
  async createDatabase(name: string): Promise<void> {
    if (!/^[a-z_][a-z0-9_]*$/.test(name))
      throw new Error(`database name ${JSON.stringify(name)} is not a plain identifier`);
    await this.psql(`CREATE DATABASE ${name};`);
  }

  /** Runs initdb as the postgres account and lets every host of the test network connect. */
  async initialise(): Promise<void> {
    const { uid, gid } = accountIds(account);
    for (const directory of [this.baseDirectory, this.socketDirectory]) {
      mkdirSync(directory, { recursive: true, mode: 0o700 });
      chownSync(directory, uid, gid);
    }
    await this.host.run(
      join(postgresBinDirectory, 'initdb'),
      ['-D', this.dataDirectory, '-U', account, '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'],
      { user: account, timeoutMs: this.readyTimeoutMs },
    );
    // `samenet`: any address on a subnet the server's host is attached to, i.e. the test network.
    const access = ['local all all trust', 'host all all 127.0.0.1/32 trust', 'host all all samenet trust', ''];
    const accessFile = join(this.dataDirectory, 'pg_hba.conf');
    writeFileSync(accessFile, access.join('\n'));
    chownSync(accessFile, uid, gid);
  }

  /** Starts the server (again) on the same data and port; resolves when it accepts connections. */
  async start(): Promise<void> {
    if (this.postmaster?.running) throw new Error('PostgreSQL is running already');
    if (!existsSync(this.dataDirectory)) throw new Error('PostgreSQL has no data directory: use startPostgres()');
    const settings: Record<string, string> = {
      listen_addresses: '*',
      port: String(this.port),
      unix_socket_directories: this.socketDirectory,
      // Losing the OS page cache is not among the faults we test; a process crash loses nothing
      // without fsync (synchronous_commit stays on: a commit is acknowledged only once written).
      fsync: 'off',
      ...this.settings,
    };
    const args = [
      '-D',
      this.dataDirectory,
      ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ];
    this.postmaster = this.host.spawn(join(postgresBinDirectory, 'postgres'), args, { user: account });
    await this.waitReady();
  }

  /** Polls pg_isready over the host's loopback until the server accepts connections. */
  async waitReady(): Promise<void> {
    const postmaster = this.process;
    const deadline = Date.now() + this.readyTimeoutMs;
    const isready = join(postgresBinDirectory, 'pg_isready');
    for (;;) {
      if (!postmaster.running) throw postmaster.failure('exited before accepting connections');
      try {
        await this.host.run(isready, ['-q', '-h', '127.0.0.1', '-p', String(this.port), '-U', account], {
          timeoutMs: 10_000,
        });
        return;
      } catch {
        if (Date.now() > deadline)
          throw postmaster.failure(`did not accept connections within ${this.readyTimeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Fast shutdown (SIGINT to the postmaster: sessions are ended, everything committed is kept); waits for it to exit. */
  async stop(): Promise<void> {
    const postmaster = this.process;
    postmaster.kill('SIGINT', 'leader');
    await postmaster.exited;
    this.postmaster = undefined;
  }

  /** SIGKILL to the postmaster and every backend, as if the machine died; the next start() runs crash recovery. */
  async kill(): Promise<void> {
    const postmaster = this.process;
    postmaster.kill('SIGKILL');
    await postmaster.exited;
    this.postmaster = undefined;
  }

  /** stop() then start(): a few seconds without a database, as in an upgrade or failover. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}
