/**
 * A test network: several hosts (network namespaces) on one bridge, so a test can run a
 * farm's machines (database, storage nodes, frontends, load balancer, workers) with real
 * addresses and kill any one of them. Each run gets its own /24 in 10.77.0.0/16, its own
 * names (see names.ts) and a record (see registry.ts); creating a network first removes what
 * crashed runs left, and teardown (also run from 'exit', SIGINT and SIGTERM) kills and reaps
 * every process and deletes every namespace and link.
 *
 * The test process, in the root namespace, reaches the hosts through the bridge, which holds
 * the subnet's first address (gatewayAddress). Hosts have no default route: they reach each
 * other and the test process, nothing else.
 *
 * Typical use (see test/e2e/hosts.test.ts):
 *   const network = await createTestNetwork(['db', 'lb', 'front1', 'front2']);  // in before()
 *   const postgres = await startPostgres(network.host('db'));
 *   const front1 = network.host('front1').spawn(process.execPath, [GRANARY_BIN, 'serve', ...]);
 *   const haproxy = await startHaproxy(network.host('lb'), { port: 8980, backends: [...] });
 *   front1.kill('SIGKILL');                                                      // a frontend dies
 *   await network.teardown();                                                    // in after()
 */
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bridgeName, checkHostName, namespaceName, type RunId, vethName } from './names.js';
import { type LeftoverReport, registerRun, removeLeftovers, unregisterRun } from './registry.js';
import { ip, killNamespaceProcesses, tryIp } from './system.js';
import { TestHost } from './testHost.js';

/** Every run's subnet is a /24 inside this /16; anything else in it is unreachable from the root namespace. */
export const testNetworkRange = '10.77.0.0/16';

/** What teardown() removed. */
export interface TeardownReport {
  namespaces: string[];
  links: string[];
  killedProcessIds: number[];
}

const liveNetworks = new Set<TestNetwork>();
let exitHooksInstalled = false;

/**
 * Creates a network with one host per name (addresses .2, .3, ... in the order given), after
 * removing the leftovers of crashed runs. Needs root and iproute2. Call teardown() when done
 * (in an `after` hook); it also happens when the process exits.
 */
export async function createTestNetwork(hostNames: readonly string[]): Promise<TestNetwork> {
  if (process.getuid?.() !== 0) throw new Error('test hosts need root (network namespaces)');
  const leftovers = removeLeftovers();
  const record = registerRun((runId) => join(tmpdir(), `granary-hosts-${runId}`));
  const network = new TestNetwork(record.runId, record.workDirectory, leftovers);
  try {
    network.createBridge();
    for (const name of hostNames) network.addHost(name);
  } catch (error) {
    await network.teardown();
    throw error;
  }
  return network;
}

/** The hosts of one test run and the bridge joining them; made by createTestNetwork(). */
export class TestNetwork {
  /** Its /24, e.g. '10.77.42.0/24'. */
  subnet = '';
  /** The test process's own address on the network (on the bridge), e.g. '10.77.42.1'. */
  gatewayAddress = '';
  private readonly hostList: TestHost[] = [];
  private teardownResult: Promise<TeardownReport> | undefined;

  constructor(
    /** Six hex digits in every name this run creates. */
    readonly runId: RunId,
    /** Scratch directory of the run (mode 755, so other accounts such as postgres reach their own subdirectories). */
    readonly workDirectory: string,
    /** What crashed earlier runs had left and this run removed. */
    readonly leftoversRemoved: LeftoverReport,
  ) {
    rmSync(workDirectory, { recursive: true, force: true });
    mkdirSync(workDirectory, { mode: 0o755 });
    liveNetworks.add(this);
    installExitHooks();
  }

  /** The hosts, in creation order. */
  get hosts(): readonly TestHost[] {
    return this.hostList;
  }

  /** The host with this name; throws if there is none. */
  host(name: string): TestHost {
    const found = this.hostList.find((candidate) => candidate.name === name);
    if (found === undefined) throw new Error(`no test host named ${name}`);
    return found;
  }

  /** The namespaces and root-namespace links this run has created (for assertions that they are gone). */
  kernelNames(): { namespaces: string[]; links: string[] } {
    return {
      namespaces: this.hostList.map((host) => host.namespace),
      links: [...this.hostList.map((_, index) => vethName(this.runId, index)), bridgeName(this.runId)],
    };
  }

  /** Adds a host (a machine joining the farm): a namespace with loopback up and the next free address. */
  addHost(name: string): TestHost {
    if (this.teardownResult) throw new Error('the test network has been torn down');
    checkHostName(name);
    if (this.hostList.some((host) => host.name === name)) throw new Error(`test host ${name} exists already`);
    const index = this.hostList.length;
    if (index > 250) throw new Error('a test network holds at most 251 hosts');
    const address = this.subnet.replace(/\.0\/24$/, `.${index + 2}`);
    const namespace = namespaceName(this.runId, name);
    const veth = vethName(this.runId, index);
    ip(['netns', 'add', namespace]);
    const host = new TestHost(name, namespace, address, this.workDirectory);
    this.hostList.push(host);
    ip(['-n', namespace, 'link', 'set', 'lo', 'up']);
    ip(['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace]);
    ip(['link', 'set', veth, 'master', bridgeName(this.runId), 'up']);
    ip(['-n', namespace, 'address', 'add', `${address}/24`, 'dev', 'eth0']);
    ip(['-n', namespace, 'link', 'set', 'eth0', 'up']);
    return host;
  }

  /**
   * Kills every process of every host (SIGKILL; group kills for the processes the hosts
   * started, then everything left in each namespace) and waits until they are reaped, then
   * deletes the links, namespaces and work directory. Safe to call more than once.
   */
  teardown(): Promise<TeardownReport> {
    if (this.teardownResult === undefined) {
      const started = this.hostList.flatMap((host) => host.runningProcesses());
      const report = this.destroySync();
      this.teardownResult = Promise.all(started.map((hostProcess) => hostProcess.exited)).then(() => report);
    }
    return this.teardownResult;
  }

  /** Makes the bridge and claims a free /24 for it (see claimSubnet). */
  createBridge(): void {
    // Traffic to an address of a network already torn down must fail here, not leave the machine.
    ip(['route', 'replace', 'unreachable', testNetworkRange]);
    const bridge = bridgeName(this.runId);
    ip(['link', 'add', bridge, 'type', 'bridge']);
    ip(['link', 'set', bridge, 'up']);
    this.claimSubnet(bridge);
  }

  /**
   * The kernel arbitrates between concurrent runs: adding the subnet's route fails with
   * "File exists" when another bridge has it, and the route vanishes with its bridge, so no
   * claim can outlive its run.
   */
  private claimSubnet(bridge: string): void {
    const candidates = Array.from({ length: 256 }, (_, index) => index).sort(() => Math.random() - 0.5);
    for (const third of candidates) {
      const gateway = `10.77.${third}.1`;
      const subnet = `10.77.${third}.0/24`;
      ip(['address', 'add', `${gateway}/24`, 'dev', bridge, 'noprefixroute']);
      const route = tryIp(['route', 'add', subnet, 'dev', bridge, 'src', gateway]);
      if (route.ok) {
        this.subnet = subnet;
        this.gatewayAddress = gateway;
        return;
      }
      ip(['address', 'delete', `${gateway}/24`, 'dev', bridge]);
      if (!route.message.includes('File exists')) throw new Error(route.message);
    }
    throw new Error(`every /24 of ${testNetworkRange} is taken by other test networks`);
  }

  /** The synchronous part of teardown, also run from the process's exit and signal handlers. */
  destroySync(): TeardownReport {
    const report: TeardownReport = { namespaces: [], links: [], killedProcessIds: [] };
    if (!liveNetworks.has(this)) return report;
    liveNetworks.delete(this);
    const killed = new Set(this.hostList.flatMap((host) => host.processIds()));
    for (const host of this.hostList) {
      for (const hostProcess of host.runningProcesses()) hostProcess.kill('SIGKILL');
    }
    for (const host of this.hostList) {
      for (const processId of killNamespaceProcesses(host.namespace)) killed.add(processId);
    }
    report.killedProcessIds = [...killed];
    const { namespaces, links } = this.kernelNames();
    for (const link of links) {
      if (tryIp(['link', 'delete', link]).ok) report.links.push(link);
    }
    for (const namespace of namespaces) {
      if (tryIp(['netns', 'delete', namespace]).ok) report.namespaces.push(namespace);
    }
    rmSync(this.workDirectory, { recursive: true, force: true });
    unregisterRun(this.runId);
    return report;
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  const destroyAll = () => {
    for (const network of [...liveNetworks]) network.destroySync();
  };
  process.on('exit', destroyAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      destroyAll();
      process.kill(process.pid, signal);
    });
  }
}
