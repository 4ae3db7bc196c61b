/**
 * Proves the test-host infrastructure the scale-out tests stand on: hosts are network
 * namespaces with their own addresses and loopback, reachable from the test process and from
 * each other; a real PostgreSQL serves other hosts and survives a restart and a crash; a real
 * HAProxy balances TCP over backends in other hosts and moves traffic off one killed with
 * SIGKILL; teardown leaves no namespace, link or process behind, and a run cleans up what a
 * crashed run left.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { requireCommand } from '../support/commands.js';
import { haproxyProgram, startHaproxy } from '../support/hosts/haproxy.js';
import { postgresBinDirectory, startPostgres } from '../support/hosts/postgres.js';
import { ipProgram, isSameProcessAlive, listLinks, listNamespaces, processStartTime } from '../support/hosts/system.js';
import { tcpRequest, waitForTcp } from '../support/hosts/tcp.js';
import type { TestHost } from '../support/hosts/testHost.js';
import { createTestNetwork, type TestNetwork } from '../support/hosts/testNetwork.js';
import { REPO_ROOT } from '../support/repository.js';

const skip =
  process.getuid?.() !== 0 && !process.env.CI
    ? 'test hosts need root'
    : requireCommand(ipProgram) ||
      requireCommand(haproxyProgram) ||
      requireCommand(join(postgresBinDirectory, 'postgres'));

/**
 * A backend that answers every connection with its host's name, listening on the host's
 * address. It ignores errors on a connection: health checks and waitForTcp connect and reset
 * at once, and an unhandled ECONNRESET would kill it.
 */
function startNameServer(host: TestHost, port: number) {
  const script = `require('node:net').createServer((s) => s.on('error', () => {}).end(${JSON.stringify(host.name)})).listen(${port}, ${JSON.stringify(host.address)})`;
  return host.spawn(process.execPath, ['-e', script]);
}

/** Polls a condition every 50 ms (for up to a minute) for what has no event to wait on. */
async function eventually(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`still false after a minute: ${condition}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function queryFromTestProcess(connectionString: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Tears the network down and checks the kernel: every process that was in a host is dead
 * (not a reused pid), and none of the run's namespaces and links exists.
 */
async function assertTeardownRemovesEverything(network: TestNetwork): Promise<void> {
  const processIds = network.hosts.flatMap((host) => host.processIds());
  assert.ok(processIds.length > 0, 'something ran in the hosts');
  const startTimes = new Map(processIds.map((pid) => [pid, processStartTime(pid) ?? '']));
  const { namespaces, links } = network.kernelNames();

  const report = await network.teardown();
  assert.deepEqual([...report.killedProcessIds].sort(), [...processIds].sort());
  assert.deepEqual([...report.namespaces].sort(), [...namespaces].sort());
  assert.deepEqual([...report.links].sort(), [...links].sort());
  for (const [pid, startTime] of startTimes) assert.equal(isSameProcessAlive(pid, startTime), false, `process ${pid}`);
  const remainingNamespaces = new Set(listNamespaces());
  for (const namespace of namespaces) assert.equal(remainingNamespaces.has(namespace), false, namespace);
  const remainingLinks = new Set(listLinks());
  for (const link of links) assert.equal(remainingLinks.has(link), false, link);
  assert.deepEqual(await network.teardown(), report, 'a second teardown changes nothing');
}

describe('test hosts', { skip }, () => {
  let network: TestNetwork;

  before(async () => {
    network = await createTestNetwork(['alpha', 'beta', 'gamma']);
  });

  after(async () => {
    await network?.teardown();
  });

  test('each host has its own address on the run subnet and a working loopback', async () => {
    const addresses = network.hosts.map((host) => host.address);
    assert.equal(new Set(addresses).size, 3);
    for (const host of network.hosts) {
      assert.ok(host.address.startsWith(network.subnet.replace(/0\/24$/, '')), `${host.address} in ${network.subnet}`);
      const { stdout } = await host.run(ipProgram, ['-4', '-o', 'address', 'show']);
      assert.match(stdout, new RegExp(`inet ${host.address.replaceAll('.', '\\.')}/24`));
      assert.doesNotMatch(stdout, /inet 192\.0\.2\./, 'the machine own interfaces are not in the host');
      // A server and a client on 127.0.0.1 inside the host talk to each other.
      const loopback = `const net = require('node:net');
        const server = net.createServer((s) => s.end('pong')).listen(0, '127.0.0.1', () => {
          net.connect(server.address().port, '127.0.0.1').on('data', (d) => { console.log(String(d)); process.exit(0); });
        });`;
      assert.equal((await host.run(process.execPath, ['-e', loopback])).stdout.trim(), 'pong');
    }
  });

  test('hosts reach each other and the test process reaches them; they reach nothing outside the network', async () => {
    const [alpha, beta] = network.hosts as [TestHost, TestHost];
    const server = startNameServer(alpha, 7000);
    await waitForTcp(alpha.address, 7000);
    assert.equal(await tcpRequest(alpha.address, 7000), 'alpha');
    const client = `require('node:net').connect(7000, ${JSON.stringify(alpha.address)}).on('data', (d) => console.log(String(d)))`;
    assert.equal((await beta.run(process.execPath, ['-e', client])).stdout.trim(), 'alpha');
    const outside = `require('node:net').connect(53, '192.0.2.1').on('error', (e) => { console.log(e.code); process.exit(0); })`;
    assert.equal((await beta.run(process.execPath, ['-e', outside])).stdout.trim(), 'ENETUNREACH');
    server.kill('SIGKILL');
    await server.exited;
  });

  test('PostgreSQL in one host serves another host and the test process, and keeps its data across a restart and a crash', async () => {
    const [alpha, beta] = network.hosts as [TestHost, TestHost];
    const postgres = await startPostgres(alpha);
    await postgres.createDatabase('granary');
    await postgres.psql(
      'CREATE TABLE acknowledged (id integer PRIMARY KEY); INSERT INTO acknowledged VALUES (1);',
      'granary',
      beta,
    );
    assert.deepEqual(await queryFromTestProcess(postgres.connectionString('granary'), 'SELECT id FROM acknowledged'), [
      { id: 1 },
    ]);

    // A client connected across a restart loses its session, and a new one finds the data.
    const client = new pg.Client({ connectionString: postgres.connectionString('granary') });
    await client.connect();
    const clientError = new Promise<Error>((resolve) => client.on('error', resolve));
    const firstPostmaster = postgres.process.pid;
    await postgres.restart();
    assert.notEqual(postgres.process.pid, firstPostmaster);
    await assert.rejects(client.query('SELECT 1'));
    await clientError;
    await postgres.psql('INSERT INTO acknowledged VALUES (2);', 'granary', beta);

    // SIGKILL to the postmaster and its backends: crash recovery keeps every committed row.
    await postgres.kill();
    await assert.rejects(queryFromTestProcess(postgres.connectionString('granary'), 'SELECT 1'));
    await postgres.start();
    const rows = await queryFromTestProcess(
      postgres.connectionString('granary'),
      'SELECT id FROM acknowledged ORDER BY id',
    );
    assert.deepEqual(rows, [{ id: 1 }, { id: 2 }]);
    assert.equal((await postgres.psql('SELECT count(*) FROM acknowledged;', 'granary', beta)).trim(), '2');
    // Left running: the last test proves that teardown takes it down.
  });

  test('HAProxy balances over backends in two hosts and moves traffic off one killed with SIGKILL', async () => {
    const [alpha, beta, gamma] = network.hosts as [TestHost, TestHost, TestHost];
    const backends = [beta, gamma].map((host) => ({ host, process: startNameServer(host, 8000) }));
    for (const { host } of backends) await waitForTcp(host.address, 8000);
    const haproxy = await startHaproxy(alpha, {
      port: 8080,
      backends: backends.map(({ host }) => ({ name: host.name, address: host.address, port: 8000 })),
    });
    await haproxy.waitForServerState('beta', 'UP');
    await haproxy.waitForServerState('gamma', 'UP');

    const answersBefore = new Set<string>();
    for (let request = 0; request < 6; request++) answersBefore.add(await tcpRequest(alpha.address, 8080));
    assert.deepEqual([...answersBefore].sort(), ['beta', 'gamma']);

    const [killed] = backends;
    killed?.process.kill('SIGKILL');
    assert.equal((await killed?.process.exited)?.signal, 'SIGKILL');
    // Before the health checks notice, a refused connection is retried on the other server.
    for (let request = 0; request < 4; request++) assert.equal(await tcpRequest(alpha.address, 8080), 'gamma');
    await haproxy.waitForServerState('beta', 'DOWN');
    for (let request = 0; request < 6; request++) assert.equal(await tcpRequest(alpha.address, 8080), 'gamma');

    // The machine comes back: checks mark it up and it takes traffic again.
    const revived = startNameServer(beta, 8000);
    await haproxy.waitForServerState('beta', 'UP');
    const answersAfter = new Set<string>();
    for (let request = 0; request < 6; request++) answersAfter.add(await tcpRequest(alpha.address, 8080));
    assert.deepEqual([...answersAfter].sort(), ['beta', 'gamma']);
    // HAProxy and the revived backend are left running for the teardown test.
    assert.ok(revived.running);
  });

  test('killing every process of a host leaves the others running', async () => {
    const [, beta, gamma] = network.hosts as [TestHost, TestHost, TestHost];
    const doomed = [startNameServer(beta, 9000), beta.spawn('sleep', ['600'])];
    const survivor = startNameServer(gamma, 9000);
    await waitForTcp(beta.address, 9000);
    await waitForTcp(gamma.address, 9000);
    const killed = beta.killAllProcesses();
    for (const hostProcess of doomed) {
      assert.ok(killed.includes(hostProcess.pid));
      assert.equal((await hostProcess.exited).signal, 'SIGKILL');
    }
    assert.deepEqual(beta.processIds(), []);
    await assert.rejects(tcpRequest(beta.address, 9000), /ECONNREFUSED/);
    assert.equal(await tcpRequest(gamma.address, 9000), 'gamma');
    survivor.kill('SIGKILL');
  });

  test('teardown kills PostgreSQL, HAProxy and every other process and removes every namespace and link', async () => {
    const running = network.hosts.flatMap((host) => host.runningProcesses());
    const commands = running.map((hostProcess) => hostProcess.commandLine).join('\n');
    assert.match(commands, /bin\/postgres /);
    assert.match(commands, /bin\/haproxy /);
    await assertTeardownRemovesEverything(network);
    for (const hostProcess of running) assert.equal(hostProcess.running, false, hostProcess.commandLine);
  });
});

describe('test network teardown', { skip }, () => {
  test('removes every namespace, link and process, even a daemon that left its parent', async () => {
    const network = await createTestNetwork(['one', 'two']);
    const [one, two] = network.hosts as [TestHost, TestHost];
    const started = [one.spawn('sleep', ['600']), startNameServer(two, 7000)];
    // A daemon: the shell exits at once and its child is adopted outside the test's process tree.
    await one.run('sh', ['-c', 'sleep 600 >/dev/null 2>&1 &']);
    await waitForTcp(two.address, 7000);
    await eventually(() => one.processIds().length === 2);
    assert.equal([...one.processIds(), ...two.processIds()].length, 3);
    await assertTeardownRemovesEverything(network);
    for (const hostProcess of started) assert.equal(hostProcess.running, false);
  });

  test('two networks alive at once get different subnets and names and neither removes the other', async () => {
    const [first, second] = await Promise.all([createTestNetwork(['same']), createTestNetwork(['same'])]);
    try {
      assert.notEqual(first?.subnet, second?.subnet);
      assert.notEqual(first?.host('same').namespace, second?.host('same').namespace);
      for (const network of [first, second]) {
        const host = network?.host('same') as TestHost;
        startNameServer(host, 7000);
        await waitForTcp(host.address, 7000);
        assert.equal(await tcpRequest(host.address, 7000), 'same');
      }
    } finally {
      await first?.teardown();
      await second?.teardown();
    }
  });

  test('a run removes the namespaces and processes of a run that was killed with SIGKILL', async () => {
    const module = join(REPO_ROOT, 'dist-test', 'test', 'support', 'hosts', 'testNetwork.js');
    const script = `const { createTestNetwork } = await import(${JSON.stringify(module)});
      const network = await createTestNetwork(['crashed']);
      const sleeper = network.host('crashed').spawn('sleep', ['600']);
      console.log(JSON.stringify({ namespace: network.host('crashed').namespace, links: network.kernelNames().links, sleeper: sleeper.pid }));`;
    const crashing = spawn(process.execPath, ['--input-type=module', '-e', `${script}\nsetInterval(() => {}, 1000);`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let output = '';
      crashing.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('\n')) resolve(output.trim());
      });
      crashing.once('exit', (code) => reject(new Error(`the crashing run exited early (${code}): ${output}`)));
    });
    const left = JSON.parse(line) as { namespace: string; links: string[]; sleeper: number };
    const sleeperStart = processStartTime(left.sleeper) ?? '';
    crashing.kill('SIGKILL');
    await new Promise((resolve) => crashing.once('exit', resolve));
    assert.ok(listNamespaces().includes(left.namespace), 'SIGKILL ran no cleanup');
    assert.ok(isSameProcessAlive(left.sleeper, sleeperStart), 'its process outlived it');

    const network = await createTestNetwork(['next']);
    try {
      assert.ok(network.leftoversRemoved.namespaces.includes(left.namespace));
      assert.ok(network.leftoversRemoved.killedProcessIds.includes(left.sleeper));
      assert.equal(listNamespaces().includes(left.namespace), false);
      for (const link of left.links) assert.equal(listLinks().includes(link), false, link);
      assert.equal(isSameProcessAlive(left.sleeper, sleeperStart), false);
    } finally {
      await network.teardown();
    }
  });
});
