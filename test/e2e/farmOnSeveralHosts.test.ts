/**
 * A farm on several machines, each a network namespace with its own address: PostgreSQL,
 * two storage nodes (`granary storage`), two frontends (`granary serve --database
 * --storage-node --storage-node`) behind HAProxy (TCP with health checks) and two workers
 * attached through HAProxy. Bazel 4.2.3 builds and tests the C++ fixture workspace through
 * the balancer's address with --remote_executor while one machine fails:
 * - a frontend killed with SIGKILL in the middle of the build: the build completes;
 * - a storage node killed with SIGKILL: after `bazel clean --expunge` the rebuild is all
 *   remote cache hits, served by the replicas on the other node;
 * - PostgreSQL restarted in the middle of the build: the build completes.
 * One network and one farm serve the three tests (each leaves the farm whole again), so
 * the machines start once. A slow genrule over a file rewritten by each test makes sure
 * work is running when the fault strikes, and that the build's result is the new one.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { bazel, bazelAsync, processSummary, remoteExecutionFlags, spawnsOtherThan } from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { requireCommand } from '../support/commands.js';
import { type HaproxyServer, haproxyProgram, startHaproxy } from '../support/hosts/haproxy.js';
import type { HostProcess } from '../support/hosts/hostProcess.js';
import { type PostgresServer, postgresBinDirectory, startPostgres } from '../support/hosts/postgres.js';
import { ipProgram } from '../support/hosts/system.js';
import type { TestHost } from '../support/hosts/testHost.js';
import { createTestNetwork, type TestNetwork } from '../support/hosts/testNetwork.js';
import { GRANARY_BIN } from '../support/repository.js';
import { removeQuietly, scratchDirectory } from '../support/scratch.js';

const skip =
  process.getuid?.() !== 0 && !process.env.CI
    ? 'test hosts need root'
    : requireCommand('bazel') ||
      requireCommand(ipProgram) ||
      requireCommand(haproxyProgram) ||
      requireCommand(join(postgresBinDirectory, 'postgres'));

const FRONTEND_PORT = 8980;
const STORAGE_PORT = 8990;
const BALANCER_PORT = 9000;

/** A package whose one action sleeps long enough for a fault to strike while it runs. */
const SLOW_PACKAGE = `genrule(
    name = "slow",
    srcs = ["token.txt"],
    outs = ["slow_out.txt"],
    cmd = "sleep 6 && cat $< > $@",
)
`;

/** One machine's granary process, and how to start it again on the same data. */
interface FarmProcess {
  host: TestHost;
  process: HostProcess;
  start(): Promise<void>;
}

describe('a farm on several hosts', { skip }, () => {
  let network: TestNetwork;
  let postgres: PostgresServer;
  let balancer: HaproxyServer;
  const storageNodes: FarmProcess[] = [];
  const frontends: FarmProcess[] = [];
  let scratch: string;
  let workspace: string;
  let outputRoot: string;
  let databaseUrl: string;
  /** The token of the last build that passed: a later test can skip building what the farm already holds. */
  let builtToken: string | undefined;

  before(async () => {
    network = await createTestNetwork(['db', 'store1', 'store2', 'front1', 'front2', 'lb', 'work1', 'work2']);
    scratch = scratchDirectory('several-hosts');
    workspace = bazelWorkspace(4, scratch);
    mkdirSync(join(workspace, 'scale'));
    writeFileSync(join(workspace, 'scale', 'BUILD'), SLOW_PACKAGE);
    writeFileSync(join(workspace, 'scale', 'token.txt'), 'first\n');
    outputRoot = join(scratch, 'bazel-root');

    postgres = await startPostgres(network.host('db'));
    await postgres.createDatabase('granary');
    databaseUrl = postgres.connectionString('granary');

    for (const name of ['store1', 'store2']) {
      const host = network.host(name);
      storageNodes.push(
        await startFarmProcess(host, [
          'storage',
          '--listen',
          `${host.address}:${STORAGE_PORT}`,
          '--data',
          join(host.workDirectory, `${name}-blobs`),
          '--max-size',
          '2GiB',
        ]),
      );
    }
    const storageFlags = storageNodes.flatMap((node) => [
      '--storage-node',
      `grpc://${node.host.address}:${STORAGE_PORT}`,
    ]);
    for (const name of ['front1', 'front2']) {
      const host = network.host(name);
      frontends.push(
        await startFarmProcess(host, [
          'serve',
          '--listen',
          `${host.address}:${FRONTEND_PORT}`,
          '--data',
          join(host.workDirectory, `${name}-data`),
          '--database',
          databaseUrl,
          ...storageFlags,
          '--workers',
          '0',
          '--worker-timeout',
          '10s',
          '--http-listen',
          'none',
        ]),
      );
    }
    balancer = await startHaproxy(network.host('lb'), {
      port: BALANCER_PORT,
      backends: frontends.map((frontend) => ({
        name: frontend.host.name,
        address: frontend.host.address,
        port: FRONTEND_PORT,
      })),
    });
    for (const name of ['work1', 'work2']) {
      const host = network.host(name);
      const worker = host.spawn(process.execPath, [
        GRANARY_BIN,
        'worker',
        '--server',
        `grpc://${balancer.address}`,
        '--slots',
        '2',
        '--sandbox',
        'none',
        '--work-dir',
        join(host.workDirectory, `${name}-work`),
      ]);
      await worker.waitForOutput(/connected as/, 120_000);
    }
  });

  after(async () => {
    await network?.teardown();
    if (scratch) removeQuietly(scratch);
  });

  /** Starts a granary command in a host and waits until it serves. */
  async function startFarmProcess(host: TestHost, args: string[]): Promise<FarmProcess> {
    const farmProcess: FarmProcess = {
      host,
      process: undefined as unknown as HostProcess,
      start: async () => {
        farmProcess.process = host.spawn(process.execPath, [GRANARY_BIN, ...args]);
        await farmProcess.process.waitForOutput(/serving on/, 120_000);
      },
    };
    await farmProcess.start();
    return farmProcess;
  }

  function buildFlags(): string[] {
    return [...remoteExecutionFlags(`grpc://${balancer.address}`, 300), '--remote_retries=10'];
  }

  /** Waits until the farm runs an action, as its database records. */
  async function untilAnActionRuns(): Promise<void> {
    const deadline = Date.now() + 240_000;
    while (Date.now() < deadline) {
      const client = new pg.Client({ connectionString: databaseUrl });
      try {
        await client.connect();
        const { rows } = await client.query(
          "SELECT count(*)::int AS running FROM granary_operations WHERE stage = 'EXECUTING'",
        );
        if ((rows[0] as { running: number }).running > 0) return;
      } catch {
        // Not reachable yet or the table is being created: ask again.
      } finally {
        await client.end().catch(() => {});
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error('no action started running within 4 minutes');
  }

  /** The frontend holding most of the balancer's connections from Bazel (the test process, behind the gateway). */
  async function frontendServingBazel(): Promise<FarmProcess> {
    const counts = await balancer.sessionsByServer(network.gatewayAddress);
    const busiest = [...counts].sort((one, other) => other[1] - one[1])[0]?.[0];
    return frontends.find((frontend) => frontend.host.name === busiest) ?? (frontends[0] as FarmProcess);
  }

  function assertBuildPassed(run: { status: number | null; output: string }, token: string): void {
    assert.equal(run.status, 0, run.output);
    assert.match(run.output, /Executed \d+ out of 2 tests: 2 tests pass/);
    assert.equal(readFileSync(join(workspace, 'bazel-bin', 'scale', 'slow_out.txt'), 'utf8'), token);
    builtToken = token;
  }

  test('a frontend killed with SIGKILL in the middle of a build: the build completes through the other one', async () => {
    const token = `frontend fault ${Date.now()}\n`;
    writeFileSync(join(workspace, 'scale', 'token.txt'), token);
    const build = bazelAsync(workspace, outputRoot, 'test', [...buildFlags(), '//...', '//scale:slow']);
    await untilAnActionRuns();
    const victim = await frontendServingBazel();
    victim.process.kill('SIGKILL');
    await victim.process.exited;
    await balancer.waitForServerState(victim.host.name, 'DOWN');
    const run = await build;
    assertBuildPassed(run, token);
    await victim.start();
    await balancer.waitForServerState(victim.host.name, 'UP');
  });

  test('a storage node killed with SIGKILL: after clean --expunge every action is a remote cache hit', async () => {
    // The farm holds the results of the previous test's build; without them (that test failed), build first.
    const token = builtToken ?? `storage fault ${Date.now()}\n`;
    if (builtToken === undefined) {
      writeFileSync(join(workspace, 'scale', 'token.txt'), token);
      assertBuildPassed(bazel(workspace, outputRoot, 'test', [...buildFlags(), '//...', '//scale:slow']), token);
    }

    const victim = storageNodes[0] as FarmProcess;
    victim.process.kill('SIGKILL');
    await victim.process.exited;
    assert.equal(bazel(workspace, outputRoot, 'clean', ['--expunge']).status, 0);
    const rebuild = bazel(workspace, outputRoot, 'test', [...buildFlags(), '//...', '//scale:slow']);
    assertBuildPassed(rebuild, token);
    const summary = processSummary(rebuild.output);
    assert.ok((summary['remote cache hit'] ?? 0) > 0, rebuild.output);
    assert.deepEqual(spawnsOtherThan(summary, ['remote cache hit']), [], rebuild.output);
    await victim.start();
  });

  test('PostgreSQL restarted in the middle of a build: the build completes', async () => {
    const token = `database fault ${Date.now()}\n`;
    writeFileSync(join(workspace, 'scale', 'token.txt'), token);
    const build = bazelAsync(workspace, outputRoot, 'test', [...buildFlags(), '//...', '//scale:slow']);
    await untilAnActionRuns();
    await postgres.restart();
    const run = await build;
    assertBuildPassed(run, token);
  });
});
