/**
 * Looking at the machine's processes from tests: which processes descend from a
 * given one (read from /proc, identified by pid and start time so that a reused
 * pid is never mistaken for a survivor), and which are still alive.
 */
import { readdir, readFile } from 'node:fs/promises';

/** A process as /proc shows it: pid, parent, start time (clock ticks after boot) and command line. */
export interface ProcessInfo {
  pid: number;
  parentPid: number;
  startTicks: string;
  commandLine: string;
}

async function readProcess(pid: number): Promise<ProcessInfo | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const commandLine = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim();
    // fields[0] is the state (field 3 of stat): a zombie has exited already.
    if (fields[0] === 'Z') return undefined;
    return { pid, parentPid: Number(fields[1]), startTicks: fields[19] ?? '', commandLine };
  } catch {
    return undefined;
  }
}

/** Every live process on the machine. */
export async function listProcesses(): Promise<ProcessInfo[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const found = await Promise.all(pids.map(readProcess));
  return found.filter((p): p is ProcessInfo => p !== undefined);
}

/** The live processes below `pid` (children, their children, ...), not `pid` itself. */
export async function descendantsOf(pid: number): Promise<ProcessInfo[]> {
  const all = await listProcesses();
  const below: ProcessInfo[] = [];
  let frontier = new Set([pid]);
  while (frontier.size > 0) {
    const next = all.filter((p) => frontier.has(p.parentPid));
    below.push(...next);
    frontier = new Set(next.map((p) => p.pid));
  }
  return below;
}

/** Those of `processes` still alive (same pid and start time, not a zombie). */
export async function stillAlive(processes: readonly ProcessInfo[]): Promise<ProcessInfo[]> {
  const alive: ProcessInfo[] = [];
  for (const known of processes) {
    const now = await readProcess(known.pid);
    if (now && now.startTicks === known.startTicks) alive.push(known);
  }
  return alive;
}
