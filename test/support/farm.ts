/**
 * The farm of an end-to-end test: `granary serve` on loopback (a :0 port) with its data in a
 * scratch directory, optionally its embedded worker and standalone `granary worker`s, and a
 * teardown that ends everything it started and removes the scratch directory whatever
 * happened (a start that failed half-way, a failed test, a process a test already killed).
 * Suites declare one with useFarm(); a test that needs a farm of its own calls startFarm().
 */
import { join } from 'node:path';
import { after, before } from 'node:test';
import { type Connection, connect } from '../../src/client/connection.js';
import { type GranaryProcess, startGranary } from './granaryProcess.js';
import { removeQuietly, scratchDirectory } from './scratch.js';

/** A standalone `granary worker` of the farm. */
export interface FarmWorkerOptions {
  /** Its bot id, also the name of its work directory in the farm's scratch directory. */
  name: string;
  /** Execution slots (`--slots`): 1 unless given. */
  slots?: number;
  /** Platform properties it offers, as KEY=VALUE (`--platform`, repeated). */
  platform?: string[];
  /** Any other flags of `granary worker` (`--sandbox`, `--drain-timeout`, `--execution-root`, ...). */
  flags?: string[];
}

export interface FarmOptions {
  /** Names the scratch directory: granary-NAME-XXXXXX in the system's temporary directory. */
  name: string;
  /**
   * Slots of the embedded worker (`--workers`); when above 0 the farm is ready only once that
   * worker has connected. Unset: `granary serve`'s default.
   */
  embeddedWorkers?: number;
  /**
   * Other flags of `granary serve` (`--max-size`, `--sandbox`, `--worker-timeout`, ...), or a
   * function giving them once the scratch directory exists (for flags naming files in it).
   */
  serveFlags?: string[] | ((farm: TestFarm) => string[]);
  /**
   * Runs once the scratch directory exists and before the server starts: writes what the
   * server's flags name (an access file, tokens, certificates).
   */
  prepare?: (farm: TestFarm) => void;
  /** Standalone workers, started in order once the server serves. */
  workers?: FarmWorkerOptions[];
}

/** Something stopped with the farm (a worker from another program, a test's own server). */
export interface Stoppable {
  stop(): Promise<unknown>;
}

/** Generous, because the machines running tests are shared and often loaded. */
const START_TIMEOUT_MS = 60_000;

/** A farm: start() brings it up, stop() ends every process and removes its scratch directory. */
export class TestFarm {
  readonly options: FarmOptions;
  /** The standalone workers started so far (killed ones included), in start order. */
  readonly workers: GranaryProcess[] = [];
  #scratch: string | undefined;
  #server: GranaryProcess | undefined;
  #listen = '127.0.0.1:0';
  readonly #attached: Stoppable[] = [];
  readonly #connections: Connection[] = [];

  constructor(options: FarmOptions) {
    this.options = options;
  }

  /** The scratch directory; the server's data is in its `data` subdirectory. Tests put their own files here too. */
  get scratch(): string {
    if (this.#scratch === undefined) throw new Error(`the farm ${this.options.name} has not been started`);
    return this.#scratch;
  }

  /** A path in the scratch directory. */
  path(...parts: string[]): string {
    return join(this.scratch, ...parts);
  }

  /** The running (or last) `granary serve`. */
  get server(): GranaryProcess {
    if (this.#server === undefined) throw new Error(`the farm ${this.options.name} has no server`);
    return this.#server;
  }

  /** HOST:PORT of the server. */
  get address(): string {
    return this.server.address;
  }

  /** grpc://HOST:PORT, for Granary's clients and Bazel. */
  get url(): string {
    return this.server.url;
  }

  /** http://HOST:PORT, as BuildStream and BuildBox name a plain-text gRPC server. */
  get httpUrl(): string {
    return `http://${this.address}`;
  }

  /** Creates the scratch directory and starts the server and the workers; if any fails, stops the rest. */
  async start(): Promise<this> {
    this.#scratch = scratchDirectory(this.options.name);
    try {
      this.options.prepare?.(this);
      await this.startServer();
      for (const worker of this.options.workers ?? []) await this.startWorker(worker);
    } catch (error) {
      await this.stop();
      throw error;
    }
    return this;
  }

  /**
   * Starts `granary serve`: on a fresh port the first time, on the same address and data
   * afterwards (a restart, after stopServer()).
   */
  async startServer(): Promise<GranaryProcess> {
    const embedded = this.options.embeddedWorkers;
    const args = ['serve', '--listen', this.#listen, '--data', this.path('data')];
    if (embedded !== undefined) args.push('--workers', String(embedded));
    const flags = this.options.serveFlags ?? [];
    args.push(...(typeof flags === 'function' ? flags(this) : flags));
    const server = await startGranary(args, START_TIMEOUT_MS);
    this.#server = server;
    this.#listen = server.address;
    if (embedded !== undefined && embedded > 0) await waitForOutput(server, /granary worker: connected as/);
    return server;
  }

  /** Stops the server (SIGTERM) and returns its exit code; the workers keep running. */
  stopServer(): Promise<number | null> {
    return this.server.stop();
  }

  /** Starts a standalone worker of this farm and waits until it has a bot session. */
  async startWorker(options: FarmWorkerOptions): Promise<GranaryProcess> {
    const args = ['worker', '--server', this.url, '--slots', String(options.slots ?? 1)];
    for (const property of options.platform ?? []) args.push('--platform', property);
    args.push(...(options.flags ?? []), '--work-dir', this.path(options.name), '--bot-id', options.name);
    const worker = await startGranary(args, START_TIMEOUT_MS, /connected as (\S+)/);
    this.workers.push(worker);
    return worker;
  }

  /** A client connection to the server, closed by stop(). */
  connect(): Connection {
    const connection = connect(this.url);
    this.#connections.push(connection);
    return connection;
  }

  /** Has stop() stop `thing` too, before the workers and the server; returns it. */
  attach<T extends Stoppable>(thing: T): T {
    this.#attached.push(thing);
    return thing;
  }

  /**
   * Closes the connections, stops what was attached, the workers and the server (each is
   * SIGKILLed if it does not exit in time), then removes the scratch directory. Never
   * throws: it runs after failures, and a second call does nothing more.
   */
  async stop(): Promise<void> {
    for (const connection of this.#connections.splice(0)) connection.close();
    await Promise.allSettled(this.#attached.splice(0).map((thing) => thing.stop()));
    await Promise.allSettled(this.workers.map((worker) => worker.stop()));
    await this.#server?.stop().catch(() => {});
    if (this.#scratch !== undefined) removeQuietly(this.#scratch);
  }
}

/** Polls a process's output (no sleeps tuned to the machine: it returns as soon as the line is there). */
async function waitForOutput(server: GranaryProcess, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!pattern.test(server.output())) {
    if (server.process.exitCode !== null || Date.now() > deadline) {
      throw new Error(`no line matching ${pattern} from granary serve:\n${server.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The farm of the enclosing describe(): started before its tests, stopped after them. */
export function useFarm(options: FarmOptions): TestFarm {
  const farm = new TestFarm(options);
  before(() => farm.start());
  after(() => farm.stop());
  return farm;
}

/** A farm started now; the caller stops it (in a finally block or an after hook). */
export function startFarm(options: FarmOptions): Promise<TestFarm> {
  return new TestFarm(options).start();
}
