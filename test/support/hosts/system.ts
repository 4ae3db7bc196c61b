/**
 * The few system calls the test hosts need, wrapped once: running `ip` (iproute2) and
 * reporting its error text, listing namespaces, links and the processes inside a
 * namespace, killing them until none is left, and telling whether a recorded process is
 * still the same process. These run synchronously on purpose: each `ip` call takes a few
 * milliseconds, and teardown must also work from a process 'exit' handler, where nothing
 * asynchronous runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/**
 * The absolute path of a system program, looked up in the usual directories rather than on
 * PATH: ip and haproxy live in /usr/sbin, which a non-login environment may not list.
 * Falls back to the bare name (then PATH decides, and a missing program fails to spawn).
 */
export function systemProgram(name: string): string {
  for (const directory of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const path = `${directory}/${name}`;
    if (existsSync(path)) return path;
  }
  return name;
}

/** iproute2's `ip`. */
export const ipProgram = systemProgram('ip');

/** Runs `ip ARGS...` and returns its standard output; throws with ip's own message on failure. */
export function ip(args: readonly string[]): string {
  const result = spawnSync(ipProgram, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.error) throw new Error(`ip ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`ip ${args.join(' ')} failed (exit ${result.status}): ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** Like ip(), but reports a failure instead of throwing (for teardown, where a missing link is fine). */
export function tryIp(args: readonly string[]): { ok: boolean; message: string } {
  try {
    ip(args);
    return { ok: true, message: '' };
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
}

/** Names of every network namespace that `ip netns` knows (in /run/netns). */
export function listNamespaces(): string[] {
  const text = ip(['-j', 'netns', 'list']).trim();
  if (text === '') return [];
  return (JSON.parse(text) as { name: string }[]).map((entry) => entry.name);
}

/** Names of every link in the root network namespace. */
export function listLinks(): string[] {
  return (JSON.parse(ip(['-j', 'link', 'show'])) as { ifname: string }[]).map((entry) => entry.ifname);
}

/**
 * Process ids of the live processes inside a namespace (zombies have left it and are not
 * listed); empty when the namespace does not exist.
 */
export function namespaceProcessIds(namespace: string): number[] {
  const result = spawnSync(ipProgram, ['netns', 'pids', namespace], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (result.status !== 0) return [];
  return result.stdout
    .split(/\s+/)
    .filter((word) => word !== '')
    .map(Number);
}

/**
 * Sends SIGKILL to every process in the namespace, again and again (a dying parent may have
 * forked), until none is left; returns every process id it killed. Throws if some survive
 * `timeoutMs` (a process stuck in the kernel).
 */
export function killNamespaceProcesses(namespace: string, timeoutMs = 15_000): number[] {
  const killed = new Set<number>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const processIds = namespaceProcessIds(namespace);
    if (processIds.length === 0) return [...killed];
    if (Date.now() > deadline) {
      throw new Error(`processes ${processIds.join(', ')} in namespace ${namespace} survived SIGKILL`);
    }
    for (const processId of processIds) {
      try {
        process.kill(processId, 'SIGKILL');
        killed.add(processId);
      } catch {
        // Already gone between the listing and the kill.
      }
    }
    sleepSync(20);
  }
}

/** Blocks the thread for a short while (used only by the synchronous teardown loops). */
export function sleepSync(durationMs: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, durationMs);
}

/**
 * The kernel's start time of a process (field 22 of /proc/PID/stat), or undefined when there
 * is no such process. A pid with the recorded start time is the same process, not a reuse.
 */
export function processStartTime(processId: number): string | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${processId}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: count after it.
  const fieldsAfterName = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return fieldsAfterName[22 - 3];
}

/** Whether the process that had this id and start time is still running (and not a zombie). */
export function isSameProcessAlive(processId: number, startTime: string): boolean {
  if (processStartTime(processId) !== startTime) return false;
  try {
    const state = readFileSync(`/proc/${processId}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const knownAccounts = new Map<string, { uid: number; gid: number }>();

/** Numeric user and primary group ids of a local account (e.g. `postgres`). */
export function accountIds(user: string): { uid: number; gid: number } {
  let ids = knownAccounts.get(user);
  if (ids === undefined) {
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    ids = { uid, gid };
    knownAccounts.set(user, ids);
  }
  return ids;
}
