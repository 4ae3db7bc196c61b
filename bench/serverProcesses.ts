/**
 * Finds the processes of a server under test on this machine, so the
 * side-by-side benchmark can report the CPU each server spent per blob, byte or
 * action (throughput on a shared machine mostly reflects the CPU share a server
 * got; CPU per unit of work does not). A server is the process listening on its
 * port, or a process named with --cpu-of, plus all their descendants (Granary's
 * embedded worker; Buildbarn's scheduler, worker and runner when the script
 * that started them is named). Linux only: everything comes from /proc.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** The process listening on a TCP port on this machine, or undefined (not local, not Linux, no permission). */
export async function listeningProcess(port: number): Promise<number | undefined> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const inode of listeningInodes(text, port)) inodes.add(inode);
  }
  if (inodes.size === 0) return undefined;
  for (const pid of await processIds()) {
    const descriptors = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const descriptor of descriptors) {
      const target = await readlink(`/proc/${pid}/fd/${descriptor}`).catch(() => '');
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (match && inodes.has(match[1] as string)) return pid;
    }
  }
  return undefined;
}

/** Socket inodes in LISTEN state on `port` in the text of /proc/net/tcp or tcp6. */
export function listeningInodes(procNetTcp: string, port: number): string[] {
  const inodes: string[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    const state = fields[3];
    const inode = fields[9];
    if (!local || state !== '0A' || !inode) continue;
    const portHex = local.slice(local.lastIndexOf(':') + 1);
    if (Number.parseInt(portHex, 16) === port) inodes.push(inode);
  }
  return inodes;
}

/** `root` and every process below it. */
export async function processTree(root: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const pid of await processIds()) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const parent = parentOf(stat);
    if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), pid]);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** The parent process ID in the text of /proc/PID/stat (the command name may hold spaces and parentheses). */
export function parentOf(stat: string): number | undefined {
  const fields = stat
    .slice(stat.lastIndexOf(')') + 1)
    .trim()
    .split(/\s+/);
  const parent = Number(fields[1]);
  return Number.isSafeInteger(parent) && parent > 0 ? parent : undefined;
}

async function processIds(): Promise<number[]> {
  const entries = await readdir('/proc').catch(() => [] as string[]);
  return entries.filter((e) => /^\d+$/.test(e)).map(Number);
}
