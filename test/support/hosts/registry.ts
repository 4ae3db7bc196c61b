/**
 * Who owns which test network. Each run writes a record (owner pid and start time, work
 * directory) under /run before it creates anything in the kernel; a later run removes the
 * namespaces, links, processes and files of every run whose owner is gone (a test process
 * killed with SIGKILL runs no cleanup), and leaves live runs of other engineers alone.
 * /run is a tmpfs, like the namespaces themselves: both vanish at reboot.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RunId, runIdOfLink, runIdOfNamespace } from './names.js';
import {
  isSameProcessAlive,
  killNamespaceProcesses,
  listLinks,
  listNamespaces,
  processStartTime,
  tryIp,
} from './system.js';

/** Where the run records live. */
export const registryDirectory = '/run/granary-test-hosts';

/** What a run leaves for the next run to judge whether it is alive and what to delete. */
export interface RunRecord {
  runId: RunId;
  ownerProcessId: number;
  ownerStartTime: string;
  workDirectory: string;
}

/** What removeLeftovers() deleted. */
export interface LeftoverReport {
  runIds: RunId[];
  namespaces: string[];
  links: string[];
  killedProcessIds: number[];
}

/**
 * Claims a fresh run id for this process and records it (atomically: written to a temporary
 * file, then renamed), before anything with its name exists in the kernel.
 */
export function registerRun(workDirectoryFor: (runId: RunId) => string): RunRecord {
  mkdirSync(registryDirectory, { recursive: true });
  for (let attempt = 0; attempt < 100; attempt++) {
    const runId = randomBytes(3).toString('hex');
    const known = new Set(readRecords().map((record) => record.runId));
    if (known.has(runId) || listNamespaces().some((name) => runIdOfNamespace(name) === runId)) continue;
    const record: RunRecord = {
      runId,
      ownerProcessId: process.pid,
      ownerStartTime: processStartTime(process.pid) ?? '',
      workDirectory: workDirectoryFor(runId),
    };
    const temporary = join(registryDirectory, `.${runId}.${process.pid}.tmp`);
    writeFileSync(temporary, JSON.stringify(record));
    renameSync(temporary, join(registryDirectory, `${runId}.json`));
    return record;
  }
  throw new Error('could not find an unused test network run id');
}

/** Forgets a run whose network is gone. */
export function unregisterRun(runId: RunId): void {
  rmSync(join(registryDirectory, `${runId}.json`), { force: true });
}

function readRecords(): RunRecord[] {
  let names: string[];
  try {
    names = readdirSync(registryDirectory);
  } catch {
    return [];
  }
  const records: RunRecord[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    try {
      records.push(JSON.parse(readFileSync(join(registryDirectory, name), 'utf8')) as RunRecord);
    } catch {
      // Removed concurrently by its owner: nothing to judge.
    }
  }
  return records;
}

function isAlive(record: RunRecord): boolean {
  return isSameProcessAlive(record.ownerProcessId, record.ownerStartTime);
}

/**
 * Deletes everything that belongs to runs whose owner process is gone: kills the processes in
 * their namespaces, deletes their veths, bridges and namespaces, their work directories and
 * records. The kernel is listed before the records are read, so a run that registers
 * meanwhile (it registers before creating anything) is never mistaken for a leftover.
 */
export function removeLeftovers(): LeftoverReport {
  const namespaces = listNamespaces().filter((name) => runIdOfNamespace(name) !== undefined);
  const links = listLinks().filter((name) => runIdOfLink(name) !== undefined);
  const records = readRecords();
  const live = new Set(records.filter(isAlive).map((record) => record.runId));
  const report: LeftoverReport = { runIds: [], namespaces: [], links: [], killedProcessIds: [] };

  const staleNamespaces = namespaces.filter((name) => !live.has(runIdOfNamespace(name) ?? ''));
  for (const namespace of staleNamespaces) {
    report.killedProcessIds.push(...killNamespaceProcesses(namespace));
  }
  // Veths before bridges (deleting one end of a veth deletes both), namespaces last.
  const staleLinks = links
    .filter((name) => !live.has(runIdOfLink(name) ?? ''))
    .sort((a, b) => (a.startsWith('grv') ? 0 : 1) - (b.startsWith('grv') ? 0 : 1));
  for (const link of staleLinks) {
    if (tryIp(['link', 'delete', link]).ok) report.links.push(link);
  }
  for (const namespace of staleNamespaces) {
    if (tryIp(['netns', 'delete', namespace]).ok) report.namespaces.push(namespace);
  }
  for (const record of records.filter((candidate) => !live.has(candidate.runId))) {
    rmSync(record.workDirectory, { recursive: true, force: true });
    unregisterRun(record.runId);
    report.runIds.push(record.runId);
  }
  return report;
}
