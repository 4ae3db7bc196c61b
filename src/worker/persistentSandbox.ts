/**
 * A slot's persistent sandbox: one bubblewrap of the host-tools profile, started
 * once per execution slot, with the slot's directory bound (writable, at its own
 * path) once, running the spawn helper (spawnHelper.ts) on the worker's own node.
 * Each action of the slot is staged in a new directory under the slot's
 * directory and run by the helper: a fork and exec in a sandbox that already
 * exists, instead of three new processes and five namespaces per action.
 *
 * Between two actions nothing of the first is left: the helper kills every other
 * process of the sandbox's PID namespace and empties /tmp, /dev/shm and System V
 * IPC before it reports the exit status, and the worker moves the action's
 * directory out of the slot's before the next action is staged.
 *
 * Used only where that is safe: host-tools actions run as the unprivileged action
 * user (the helper is root of the sandbox, out of the actions' reach), with the
 * host's own system directories (the helper runs the worker's node from /usr).
 * Hermetic actions, execution roots and workers without an action user use a
 * sandbox per action (sandbox.ts).
 *
 * An action with cgroup limits is forked by the helper inside the slot's group
 * (slotGroup.ts, spawnHelper.ts); for that the sandbox also binds the directories
 * the worker makes action groups in.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, realpath } from 'node:fs/promises';
import { constants } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Code, StatusError } from '../util/status.js';
import { nowMs } from '../util/time.js';
import type { ActionCgroups, ActionGroup, ActionLimits } from './cgroups/actionCgroups.js';
import { SlotGroup } from './cgroups/slotGroup.js';
import type { RunOutcome, RunRequest } from './runner.js';
import { trackProcessGroup, watchForStop } from './runner.js';
import { type ActionUser, DEFAULT_BWRAP_PATH, hostToolsOptions, shownByHostTools } from './sandbox.js';

export interface PersistentSandboxOptions {
  /** The slot's directory (made if missing); actions' directories go below it. */
  directory: string;
  actionUser: ActionUser;
  /**
   * Host directories also bound at their own paths, for the worker's own use in
   * the sandbox: the parents of per-action cgroups, whose cgroup.procs an action's
   * first process writes before it execs (see cgroups/actionCgroups.ts).
   */
  extraBinds?: readonly string[];
  bwrapPath?: string;
  log?: (message: string) => void;
}

interface HelperMessage {
  type: 'ready' | 'exited';
  exitCode?: number | null;
  signal?: string | null;
  stdoutBytes?: number;
  stderrBytes?: number;
  error?: string;
}

let helperSource: string | undefined;

/** The helper's compiled JavaScript, read once per process. */
function spawnHelperSource(): string {
  helperSource ??= readFileSync(new URL('./spawnHelper.js', import.meta.url), 'utf8');
  return helperSource;
}

/** Whether the sandbox shows this process's node (the helper runs on it). */
export function nodeVisibleInSandbox(): boolean {
  return shownByHostTools(process.execPath);
}

export class PersistentSandbox {
  /** The slot's directory by its real path (where it is bound in the sandbox); set once ready. */
  directory = '';
  /** Resolves true once the helper is ready, false if the sandbox could not start. */
  readonly ready: Promise<boolean>;
  private child: ChildProcess | undefined;
  private untrack: (() => void) | undefined;
  private waiter: ((message: HelperMessage | undefined) => void) | undefined;
  private alive = false;
  /** Set by close() and kill(): a sandbox still starting then stops as soon as it can. */
  private stopping = false;
  private stderrTail = '';
  /** Set when the sandbox could not start at all (the pool then stops making them). */
  startFailed = false;
  /** The slot's cgroup for actions with limits, kept from one action to the next (slotGroup.ts). */
  private group: SlotGroup | undefined;

  constructor(private readonly options: PersistentSandboxOptions) {
    this.ready = this.start().catch((error: Error) => {
      if (this.stopping) return false;
      this.options.log?.(
        `granary worker: a persistent sandbox could not start (actions get a sandbox each): ${error.message}`,
      );
      this.startFailed = true;
      this.kill();
      return false;
    });
  }

  /** False once the sandbox has stopped (it is then replaced, never reused). */
  get usable(): boolean {
    return this.alive;
  }

  private async start(): Promise<boolean> {
    await mkdir(this.options.directory, { recursive: true, mode: 0o711 });
    this.directory = await realpath(this.options.directory);
    const options = await hostToolsOptions(this.directory, '/', this.options.actionUser);
    for (const directory of this.options.extraBinds ?? []) options.push('--bind', directory, directory);
    if (this.stopping) return false;
    const helper = [process.execPath, '--input-type=module', '-e', spawnHelperSource(), this.directory];
    const child = spawn(
      this.options.bwrapPath ?? DEFAULT_BWRAP_PATH,
      [...options, '--chdir', '/', '--clearenv', '--', ...helper],
      { stdio: ['pipe', 'pipe', 'pipe'], detached: true },
    );
    this.child = child;
    if (child.pid !== undefined) this.untrack = trackProcessGroup(child.pid);
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-2048);
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => this.deliver(parseMessage(line)));
    child.once('exit', () => {
      this.alive = false;
      this.untrack?.();
      this.deliver(undefined);
    });
    child.once('error', () => this.deliver(undefined));
    const first = await this.next();
    if (first?.type !== 'ready') {
      throw new Error(`the spawn helper did not start: ${this.stderrTail.trim() || 'no reason given'}`);
    }
    if (this.stopping) {
      this.kill();
      return false;
    }
    this.alive = true;
    return true;
  }

  private deliver(message: HelperMessage | undefined): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(message);
  }

  private next(): Promise<HelperMessage | undefined> {
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  private send(message: object): void {
    this.child?.stdin?.write(`${JSON.stringify(message)}\n`);
  }

  /**
   * Runs one command in the sandbox with runCommand's semantics: output to the
   * two files (created if missing), SIGTERM to the command's process group on
   * timeout or abort and SIGKILL to the whole sandbox after the grace period, and
   * an outcome reported only once nothing of the action is left running. With
   * `limited`, the command starts in that group, one of this slot's (slotGroup()).
   */
  async run(request: RunRequest, limited?: { group: ActionGroup; maxProcesses: number }): Promise<RunOutcome> {
    if (!this.alive) throw new StatusError(Code.INTERNAL, "the slot's persistent sandbox is not running");
    const startMs = nowMs();
    const exited = this.next();
    // The helper forks the command inside the action's group (spawnHelper.ts).
    const group = limited && {
      procsFiles: limited.group.procsFiles,
      homeProcsFiles: this.group?.homeProcsFiles ?? [],
      pidsMaxFile: limited.group.pidsMaxFile,
      maxProcesses: limited.maxProcesses,
    };
    this.send({
      type: 'run',
      file: request.file,
      args: request.args,
      env: request.env,
      cwd: request.cwd,
      stdoutPath: request.stdoutPath,
      stderrPath: request.stderrPath,
      ...(group ? { group } : {}),
    });
    const stop = watchForStop(request, (signal) => this.send({ type: 'signal', signal }));
    const message = await exited;
    stop.dispose();
    const { timedOut, cancelled } = stop;
    if (message?.type !== 'exited') {
      this.kill();
      throw new StatusError(
        Code.INTERNAL,
        `the slot's persistent sandbox stopped while the action ran: ${this.stderrTail.trim() || 'no reason given'}`,
      );
    }
    const common = { timedOut, cancelled, startMs, endMs: nowMs() };
    const sizes = { stdoutBytes: message.stdoutBytes, stderrBytes: message.stderrBytes };
    if (message.error !== undefined) return { exitCode: -1, spawnError: new Error(message.error), ...common };
    const signalNumber = message.signal ? (constants.signals[message.signal as NodeJS.Signals] ?? 0) : 0;
    return { exitCode: message.exitCode ?? 128 + signalNumber, ...common, ...sizes };
  }

  /**
   * The slot's cgroup, in `cgroups`, for its actions with limits: made on first
   * use, kept while the sandbox runs (every action of the slot leaves it empty),
   * removed when the sandbox stops.
   */
  slotGroup(cgroups: ActionCgroups, maxima: ActionLimits): SlotGroup {
    this.group ??= new SlotGroup(cgroups, basename(this.options.directory), maxima);
    return this.group;
  }

  /** Stops the sandbox: the helper exits when its input closes, taking every process of the sandbox with it. */
  async close(): Promise<void> {
    this.stopping = true;
    await this.ready;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin?.end();
      const timer = setTimeout(() => this.kill(), 5000);
      await gone;
      clearTimeout(timer);
    }
    await this.removeGroup();
  }

  /** Kills the sandbox at once (its PID namespace goes with bubblewrap); its cgroup is removed once empty. */
  kill(): void {
    this.stopping = true;
    this.alive = false;
    const pid = this.child?.pid;
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    void this.removeGroup();
  }

  private async removeGroup(): Promise<void> {
    const group = this.group;
    this.group = undefined;
    await group
      ?.remove()
      .catch((error: Error) => this.options.log?.(`granary worker: the slot's cgroup: ${error.message}`));
  }
}

function parseMessage(line: string): HelperMessage | undefined {
  try {
    return JSON.parse(line) as HelperMessage;
  } catch {
    return undefined;
  }
}

/**
 * The persistent sandboxes of a worker's slots: an action takes an idle one (or
 * a new one, in its own slot directory) and gives it back when its directory has
 * left the slot's. A sandbox that stopped is dropped and replaced.
 */
export class SandboxPool {
  private readonly idle: PersistentSandbox[] = [];
  private readonly all = new Set<PersistentSandbox>();
  private made = 0;
  /** Once a sandbox could not start, none is made again: every action gets a sandbox of its own. */
  private disabled = false;

  constructor(
    private readonly options: Omit<PersistentSandboxOptions, 'directory'> & {
      /** Where the slots' directories are made. */
      directory: string;
      /** Sandboxes started at once (one per slot), so the first actions do not wait for them. */
      prestart: number;
    },
  ) {
    for (let i = 0; i < options.prestart; i++) this.idle.push(this.make());
  }

  private make(): PersistentSandbox {
    const sandbox = new PersistentSandbox({
      ...this.options,
      directory: join(this.options.directory, `slot-${this.made++}`),
    });
    this.all.add(sandbox);
    return sandbox;
  }

  /** An idle sandbox, or a new one; undefined once sandboxes proved unable to start here. */
  acquire(): PersistentSandbox | undefined {
    if (this.disabled) return undefined;
    return this.idle.pop() ?? this.make();
  }

  release(sandbox: PersistentSandbox): void {
    if (sandbox.usable) {
      this.idle.push(sandbox);
    } else {
      if (sandbox.startFailed) this.disabled = true;
      this.all.delete(sandbox);
      sandbox.kill();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.all].map((sandbox) => sandbox.close()));
  }

  kill(): void {
    for (const sandbox of this.all) sandbox.kill();
  }
}
