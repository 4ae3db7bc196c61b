/**
 * A test host: one network namespace with its own address and loopback, standing for one
 * machine of a farm. Commands run inside it through `ip netns exec` (and `setpriv` to run as
 * another user, which execs rather than forks, so the pid we hold is the program's own).
 * The file system is the machine's: hosts share it, only the network is theirs.
 */
import { spawn } from 'node:child_process';
import { HostProcess } from './hostProcess.js';
import { accountIds, ipProgram, killNamespaceProcesses, namespaceProcessIds, systemProgram } from './system.js';

/** How to run a command in a host. */
export interface HostCommandOptions {
  /** Run as this local account instead of root (e.g. 'postgres'); HOME becomes the run's work directory. */
  user?: string;
  /** Added to (and overriding) the test process's environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** How to run a command to completion in a host. */
export interface HostRunOptions extends HostCommandOptions {
  /** Killed (with its process group) after this long; default 60 s. */
  timeoutMs?: number;
  /** Written to its standard input. */
  input?: string;
}

/** What a command that exited with status 0 printed. */
export interface HostRunResult {
  stdout: string;
  stderr: string;
}

/** One machine of a test network; made by TestNetwork, never directly. */
export class TestHost {
  private readonly processes = new Set<HostProcess>();

  constructor(
    /** The name the test gave it, e.g. 'db'. */
    readonly name: string,
    /** Its network namespace, `granary-RUNID-NAME`. */
    readonly namespace: string,
    /** Its IPv4 address on the test network, reachable from every host and from the test process. */
    readonly address: string,
    /** The run's scratch directory (readable by every account), for data directories and configuration. */
    readonly workDirectory: string,
  ) {}

  /**
   * Starts a long-running process in the host (its own process group, output kept). The test
   * network kills and reaps it at teardown if the test has not.
   */
  spawn(command: string, args: readonly string[] = [], options: HostCommandOptions = {}): HostProcess {
    const child = spawn(ipProgram, this.commandLine(command, args, options), {
      cwd: options.cwd,
      env: this.environment(options),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const hostProcess = new HostProcess(this.name, [command, ...args].join(' '), child);
    this.processes.add(hostProcess);
    void hostProcess.exited.then(() => this.processes.delete(hostProcess));
    return hostProcess;
  }

  /** Runs a command in the host to completion; rejects with its output if it fails or times out. */
  async run(command: string, args: readonly string[] = [], options: HostRunOptions = {}): Promise<HostRunResult> {
    const child = spawn(ipProgram, this.commandLine(command, args, options), {
      cwd: options.cwd,
      env: this.environment(options),
      detached: true,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const hostProcess = new HostProcess(this.name, [command, ...args].join(' '), child);
    this.processes.add(hostProcess);
    // A command may exit without reading its input; its exit status tells what happened.
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timeoutMs = options.timeoutMs ?? 60_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      hostProcess.kill('SIGKILL');
    }, timeoutMs);
    const exit = await hostProcess.exited;
    clearTimeout(timer);
    this.processes.delete(hostProcess);
    if (timedOut) throw hostProcess.failure(`did not finish within ${timeoutMs} ms`);
    if (exit.code !== 0) {
      throw hostProcess.failure(exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`);
    }
    return { stdout, stderr };
  }

  /** Every live process in the host, whoever started it (children and daemons included). */
  processIds(): number[] {
    return namespaceProcessIds(this.namespace);
  }

  /**
   * SIGKILLs every process in the host and waits until none is left: the machine dies. Its
   * network stays, so connections to it are refused (as by a rebooting machine) rather than
   * timing out. Returns the killed process ids.
   */
  killAllProcesses(): number[] {
    return killNamespaceProcesses(this.namespace);
  }

  /** The processes started with spawn() or run() that have not exited yet. */
  runningProcesses(): HostProcess[] {
    return [...this.processes].filter((hostProcess) => hostProcess.running);
  }

  private commandLine(command: string, args: readonly string[], options: HostCommandOptions): string[] {
    const prefix = ['netns', 'exec', this.namespace];
    if (options.user === undefined) return [...prefix, command, ...args];
    const { uid, gid } = accountIds(options.user);
    return [
      ...prefix,
      systemProgram('setpriv'),
      `--reuid=${uid}`,
      `--regid=${gid}`,
      '--init-groups',
      '--',
      command,
      ...args,
    ];
  }

  private environment(options: HostCommandOptions): NodeJS.ProcessEnv {
    const home = options.user === undefined ? {} : { HOME: this.workDirectory, USER: options.user };
    return { ...process.env, ...home, ...options.env };
  }
}
