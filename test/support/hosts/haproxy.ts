/**
 * A real HAProxy (Debian's haproxy) in a test host, balancing TCP connections over backends
 * in other hosts with health checks, as a farm's frontends sit behind a load balancer. The
 * test writes the configuration; HAProxy runs in the foreground (-db) as a child of the test.
 * Its admin socket lets a test wait until a killed backend has been marked down.
 */
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { HostProcess } from './hostProcess.js';
import { systemProgram } from './system.js';
import { waitForTcp } from './tcp.js';
import type { TestHost } from './testHost.js';

/** Debian's haproxy (in /usr/sbin). */
export const haproxyProgram = systemProgram('haproxy');

/** One server behind the balancer. */
export interface HaproxyBackend {
  /** Its name in the statistics (letters, digits, '-', '_'), e.g. the host's name. */
  name: string;
  address: string;
  port: number;
}

/** Options for startHaproxy(). */
export interface HaproxyOptions {
  /** Port the balancer listens on, on every address of its host. */
  port: number;
  backends: readonly HaproxyBackend[];
  /** Time between two health checks (TCP connects) of a server; default 500 ms. */
  checkIntervalMs?: number;
  /** Failed checks in a row before a server is marked down; default 2. */
  fallCount?: number;
  /** Successful checks in a row before a server is marked up again; default 2. */
  riseCount?: number;
  /** How a new connection picks a server; default 'roundrobin'. */
  balance?: 'roundrobin' | 'leastconn';
  /** How long an idle client or server connection stays open; default 1 h (gRPC streams such as WaitExecution idle for long). */
  idleTimeoutMs?: number;
}

/** The configuration startHaproxy() writes (exported so a test or the README can show it). */
export function haproxyConfiguration(options: HaproxyOptions, adminSocketPath: string): string {
  const idleMs = options.idleTimeoutMs ?? 3_600_000;
  const check = `check inter ${options.checkIntervalMs ?? 500} fall ${options.fallCount ?? 2} rise ${options.riseCount ?? 2}`;
  for (const backend of options.backends) {
    if (!/^[A-Za-z0-9_-]+$/.test(backend.name))
      throw new Error(`backend name ${JSON.stringify(backend.name)} is not plain`);
  }
  return [
    'global',
    `  stats socket ${adminSocketPath} mode 600 level admin`,
    '  maxconn 4096',
    // One line per connection on standard error (kept in the process output), with the
    // server chosen and how the session ended, for failure messages.
    '  log stderr format raw local0 info',
    'defaults',
    '  mode tcp',
    '  log global',
    '  option tcplog',
    '  timeout connect 2s',
    `  timeout client ${idleMs}ms`,
    `  timeout server ${idleMs}ms`,
    // A connection refused by a dead server is retried at once on another one.
    '  retries 3',
    '  option redispatch 1',
    'frontend granary',
    `  bind :${options.port}`,
    '  default_backend servers',
    'backend servers',
    `  balance ${options.balance ?? 'roundrobin'}`,
    ...options.backends.map(
      (backend) =>
        `  server ${backend.name} ${backend.address}:${backend.port} ${check} on-marked-down shutdown-sessions`,
    ),
    '',
  ].join('\n');
}

/** Writes the configuration into the run's work directory, starts HAProxy in `host`, and waits until it accepts connections. */
export async function startHaproxy(host: TestHost, options: HaproxyOptions): Promise<HaproxyServer> {
  const base = join(host.workDirectory, `haproxy-${host.name}-${options.port}`);
  const configurationPath = `${base}.cfg`;
  const adminSocketPath = `${base}.sock`;
  writeFileSync(configurationPath, haproxyConfiguration(options, adminSocketPath));
  await host.run(haproxyProgram, ['-c', '-q', '-f', configurationPath]);
  const haproxy = host.spawn(haproxyProgram, ['-db', '-f', configurationPath]);
  const server = new HaproxyServer(host, options.port, configurationPath, adminSocketPath, haproxy);
  await haproxy.whileRunning(waitForTcp(host.address, options.port), 'accepted connections');
  return server;
}

/** HAProxy running in a test host; made by startHaproxy(). */
export class HaproxyServer {
  constructor(
    readonly host: TestHost,
    readonly port: number,
    readonly configurationPath: string,
    private readonly adminSocketPath: string,
    /** The haproxy process (kill it to lose the balancer). */
    readonly process: HostProcess,
  ) {}

  /** The balancer's address, e.g. '10.77.3.2:8980'. */
  get address(): string {
    return `${this.host.address}:${this.port}`;
  }

  /** Each backend's state as HAProxy sees it ('UP', 'DOWN', 'UP 1/2' while going down, 'MAINT', ...). */
  async serverStates(): Promise<Map<string, string>> {
    const csv = await this.adminCommand('show stat');
    const lines = csv.split('\n').filter((line) => line !== '');
    const header = (lines[0] ?? '').replace(/^# /, '').split(',');
    const proxyColumn = header.indexOf('pxname');
    const serverColumn = header.indexOf('svname');
    const statusColumn = header.indexOf('status');
    const states = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const fields = line.split(',');
      const server = fields[serverColumn] ?? '';
      if (fields[proxyColumn] !== 'servers' || server === 'BACKEND') continue;
      states.set(server, fields[statusColumn] ?? '');
    }
    return states;
  }

  /**
   * How many open sessions from `clientAddress` each backend serves (from `show sess`), to
   * find the server a client's connections went to.
   */
  async sessionsByServer(clientAddress: string): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const line of (await this.adminCommand('show sess')).split('\n')) {
      const source = / src=([^ ]+):\d+ /.exec(line)?.[1];
      const server = / srv=([^ ]+) /.exec(line)?.[1];
      if (source === clientAddress && server) counts.set(server, (counts.get(server) ?? 0) + 1);
    }
    return counts;
  }

  /** Polls serverStates() until `backendName` is in `state` ('UP' or 'DOWN'). */
  async waitForServerState(backendName: string, state: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let seen: string | undefined;
    while (Date.now() < deadline) {
      seen = (await this.serverStates()).get(backendName);
      if (seen === state) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`HAProxy did not mark ${backendName} ${state} within ${timeoutMs} ms (last seen: ${seen})`);
  }

  /** SIGTERM (HAProxy stops at once) and waits for it to exit. */
  async stop(): Promise<void> {
    await this.process.stop();
  }

  /** Sends one command to the admin socket and returns the answer. */
  private adminCommand(command: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.adminSocketPath);
      let answer = '';
      socket.setTimeout(10_000, () => socket.destroy(new Error(`HAProxy admin socket: no answer to ${command}`)));
      socket.on('connect', () => socket.write(`${command}\n`));
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString();
      });
      socket.on('error', reject);
      socket.on('close', (hadError) => {
        if (!hadError) resolve(answer);
      });
    });
  }
}
