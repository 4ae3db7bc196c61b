/**
 * The spawn helper: the one long-lived program of a slot's persistent sandbox
 * (persistentSandbox.ts). bubblewrap starts it once per slot, in the sandbox's
 * own PID namespace, as the sandbox's root; it then runs the slot's actions one
 * at a time, so an action costs a fork and an exec of a small process instead of
 * a new bubblewrap and a fork of the whole worker.
 *
 * Protocol: one JSON object per line on stdin, answers likewise on stdout.
 *   -> {"type":"run","file","args","env","cwd","stdoutPath","stderrPath","group"?}
 *   -> {"type":"signal","signal":"SIGTERM"|"SIGKILL"}   (while an action runs)
 *   <- {"type":"ready"}                                  (once, at start)
 *   <- {"type":"exited","exitCode","signal","stdoutBytes","stderrBytes","error"?}  (per run)
 * "exited" is sent only once the action has left no trace: every other process
 * of the namespace is gone (SIGKILL to all of them, then waiting until /proc
 * shows none), /tmp and /dev/shm are empty and no System V IPC object is left.
 * SIGTERM goes to the action's process group; SIGKILL to the whole namespace.
 * The helper exits when stdin closes, or when it cannot clear the namespace.
 *
 * An action with limits names its cgroup ("group"): the helper moves itself into
 * it, forks the command there (so the command and everything it starts are born
 * in the group, with no window outside it), and moves itself back to its own
 * group before it does anything else; while it is in the group, the group's
 * process limit is raised by the helper's own threads so that the fork fits, and
 * lowered again after. No shell is needed to enter the group.
 *
 * It is run with `node --input-type=module -e SOURCE SLOT_DIRECTORY`: it imports nothing but
 * Node's own modules, and nothing of the worker needs to be visible in the sandbox.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

interface RunMessage {
  type: 'run';
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  stdoutPath: string;
  stderrPath: string;
  group?: GroupEntry;
}

/** The action's cgroup, as the helper enters it (see the file comment). */
interface GroupEntry {
  /** The action group's cgroup.procs files (one per v1 hierarchy). */
  procsFiles: string[];
  /** The helper's own group's cgroup.procs files, where it goes back to. */
  homeProcsFiles: string[];
  /** The action group's pids.max, and the action's process limit. */
  pidsMaxFile: string;
  maxProcesses: number;
}

interface SignalMessage {
  type: 'signal';
  signal: 'SIGTERM' | 'SIGKILL';
}

/** Directories every action may write that outlive its processes, emptied after each action. */
const SCRATCH_DIRECTORIES = ['/tmp', '/dev/shm'];
const SYSV_IPC_TABLES = ['/proc/sysvipc/shm', '/proc/sysvipc/sem', '/proc/sysvipc/msg'];
const IPCRM = '/usr/bin/ipcrm';
/** How long clearing the namespace may take before the helper gives up (and the worker starts a new sandbox). */
const CLEAR_LIMIT_MS = 10_000;

/** The slot's directory, bound from the host: never emptied (the worker re-stages it). */
const slotDirectory = process.argv[1] ?? '';
if (!slotDirectory.startsWith('/')) {
  process.stderr.write('spawn helper: usage: node spawnHelper.js SLOT_DIRECTORY\n');
  process.exit(2);
}

// kill(-1) must only ever reach this sandbox's processes: refuse to run anywhere but
// near the start of a PID namespace of our own (bubblewrap's init is 1, we are 2).
if (process.pid > 8) {
  process.stderr.write(`spawn helper: pid ${process.pid}: not in a PID namespace of its own; refusing to run\n`);
  process.exit(2);
}

let running: ReturnType<typeof spawn> | undefined;
let busy = false;

function send(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function run(message: RunMessage): void {
  busy = true;
  let stdout: number | undefined;
  let stderr: number | undefined;
  let reported = false;
  const finish = (exitCode: number | null, signal: string | null, error?: string) => {
    if (reported) return;
    reported = true;
    running = undefined;
    void clearNamespace().then(
      () => {
        busy = false;
        const sizes = { stdoutBytes: sizeOf(message.stdoutPath), stderrBytes: sizeOf(message.stderrPath) };
        send({ type: 'exited', exitCode, signal, ...sizes, ...(error === undefined ? {} : { error }) });
      },
      (reason: Error) => {
        process.stderr.write(`spawn helper: ${reason.message}\n`);
        process.exit(3);
      },
    );
  };
  const group = message.group;
  let entered = false;
  try {
    stdout = openSync(message.stdoutPath, 'a');
    stderr = openSync(message.stderrPath, 'a');
    if (group) {
      entered = true;
      enterGroup(group);
    }
    const child = spawn(message.file, message.args, {
      cwd: message.cwd,
      env: message.env,
      stdio: ['ignore', stdout, stderr],
      detached: true,
    });
    if (entered && group) {
      entered = false;
      leaveGroup(group);
    }
    running = child;
    child.once('error', (error) => finish(-1, null, error.message));
    child.once('exit', (code, signal) => finish(code, signal));
  } catch (error) {
    if (entered && group) leaveGroup(group);
    finish(-1, null, (error as Error).message);
  } finally {
    if (stdout !== undefined) closeSync(stdout);
    if (stderr !== undefined) closeSync(stderr);
  }
}

/** Moves this helper into the action's group, with room in its process limit for the helper's own threads. */
function enterGroup(group: GroupEntry): void {
  try {
    const threads = readdirSync('/proc/self/task').length;
    writeFileSync(group.pidsMaxFile, String(group.maxProcesses + threads));
    for (const file of group.procsFiles) writeFileSync(file, String(process.pid));
  } catch (error) {
    throw new Error(`cannot enter the action's cgroup: ${(error as Error).message}`);
  }
}

/**
 * Restores the action's process limit, then moves this helper back to its own
 * group; exits if it cannot. In this order the action never has more than its
 * limit: until the helper leaves, its own threads still count against the raised
 * limit (the kernel accepts a limit below the current count and only refuses
 * further forks).
 */
function leaveGroup(group: GroupEntry): void {
  try {
    writeFileSync(group.pidsMaxFile, String(group.maxProcesses));
    for (const file of group.homeProcsFiles) writeFileSync(file, String(process.pid));
  } catch (error) {
    // Staying in an action's group would put the helper under its limits: stop the sandbox instead.
    process.stderr.write(`spawn helper: cannot leave the action's cgroup: ${(error as Error).message}\n`);
    killAllOthers();
    process.exit(3);
  }
}

/** A file's size, or undefined when it cannot be looked at. */
function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

function signal(message: SignalMessage): void {
  const child = running;
  if (message.signal === 'SIGKILL') {
    killAllOthers();
  } else if (child?.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  }
}

/** SIGKILL to every process of the namespace but its init and this helper. */
function killAllOthers(): void {
  try {
    process.kill(-1, 'SIGKILL');
  } catch {
    // ESRCH: nothing else is left.
  }
}

function otherProcesses(): string[] {
  const self = String(process.pid);
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name) && name !== '1' && name !== self);
}

async function clearNamespace(): Promise<void> {
  const start = Date.now();
  for (;;) {
    killAllOthers();
    // Killed orphans are reaped by bubblewrap's init (PID 1); they are gone when /proc no longer lists them.
    if (otherProcesses().length === 0) break;
    if (Date.now() - start > CLEAR_LIMIT_MS) throw new Error(`processes survive SIGKILL: ${otherProcesses()}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  for (const directory of SCRATCH_DIRECTORIES) if (existsSync(directory)) emptyDirectory(directory);
  if (SYSV_IPC_TABLES.some(hasEntries)) spawnSync(IPCRM, ['--all'], { stdio: 'ignore' });
}

/**
 * Removes everything in `directory` but the way to the slot's directory (bound
 * from the host, it may lie below /tmp, e.g. /tmp/x/slot-0): never into it.
 */
function emptyDirectory(directory: string): void {
  for (const entry of readdirSync(directory)) {
    const path = `${directory}/${entry}`;
    if (path === slotDirectory) continue;
    if (slotDirectory.startsWith(`${path}/`)) emptyDirectory(path);
    else rmSync(path, { recursive: true, force: true });
  }
}

/** Whether a /proc/sysvipc table lists anything below its header line. */
function hasEntries(table: string): boolean {
  try {
    return readFileSync(table, 'utf8').trim().split('\n').length > 1;
  } catch {
    return false;
  }
}

function handle(line: string): void {
  let message: RunMessage | SignalMessage;
  try {
    message = JSON.parse(line) as RunMessage | SignalMessage;
  } catch {
    process.stderr.write('spawn helper: a request is not JSON\n');
    process.exit(2);
  }
  if (message.type === 'run' && !busy) run(message);
  else if (message.type === 'signal') signal(message);
  else {
    process.stderr.write(`spawn helper: unexpected ${message.type} request\n`);
    process.exit(2);
  }
}

const input = createInterface({ input: process.stdin });
input.on('line', handle);
input.on('close', () => {
  killAllOthers();
  process.exit(0);
});
void clearNamespace().then(() => send({ type: 'ready' }));
