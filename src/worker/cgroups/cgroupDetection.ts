/**
 * Finds the cgroups this worker can put actions into, once at start: cgroup v2 if
 * the worker's group there has the memory, cpu and pids controllers and is
 * delegated to it, else cgroup v1 if the memory, cpu, cpuacct and pids hierarchies
 * are mounted and writable, else none (and why, for the worker's start-up line).
 * Where the worker's own group is comes from /proc/self/cgroup, where each
 * hierarchy is mounted from /proc/self/mountinfo.
 */
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { ActionCgroups } from './actionCgroups.js';
import { CgroupV1, V1_CONTROLLERS, type V1Controller, type V1Groups } from './cgroupV1.js';
import { CgroupV2 } from './cgroupV2.js';

export interface CgroupMount {
  /** The directory of the hierarchy shown at the mount point. */
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
  readonly superOptions: readonly string[];
}

/** One line of /proc/self/cgroup: the controllers of a hierarchy (none for v2) and the process's group in it. */
export interface CgroupMembership {
  readonly hierarchyId: string;
  readonly controllers: readonly string[];
  readonly path: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** The cgroup and cgroup2 mounts of a /proc/PID/mountinfo. */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (separator < 6) continue;
    const fsType = fields[separator + 1] ?? '';
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    mounts.push({
      root: unescapeMountField(fields[3] ?? ''),
      mountPoint: unescapeMountField(fields[4] ?? ''),
      fsType,
      superOptions: (fields[separator + 3] ?? '').split(','),
    });
  }
  return mounts;
}

export function parseCgroupMemberships(procCgroup: string): CgroupMembership[] {
  const memberships: CgroupMembership[] = [];
  for (const line of procCgroup.split('\n')) {
    const match = /^([^:]+):([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, hierarchyId, controllers, path] = match as unknown as [string, string, string, string];
    memberships.push({ hierarchyId, controllers: controllers === '' ? [] : controllers.split(','), path });
  }
  return memberships;
}

/** The directory of `path` (a group of the hierarchy) under a mount showing the hierarchy's `root`, if visible. */
function directoryOf(mount: CgroupMount, path: string): string | undefined {
  const relative = posix.relative(mount.root, path);
  if (relative.startsWith('..')) return undefined;
  return join(mount.mountPoint, relative);
}

/** The worker's cgroup v2 group directory, if a cgroup2 file system shows it. */
export function v2GroupOf(
  mounts: readonly CgroupMount[],
  memberships: readonly CgroupMembership[],
): string | undefined {
  const membership = memberships.find((m) => m.hierarchyId === '0' && m.controllers.length === 0);
  if (!membership) return undefined;
  for (const mount of mounts) {
    if (mount.fsType !== 'cgroup2') continue;
    const directory = directoryOf(mount, membership.path);
    if (directory !== undefined) return directory;
  }
  return undefined;
}

/** The worker's group directory in each v1 hierarchy Granary uses, or the first controller missing. */
export function v1GroupsOf(
  mounts: readonly CgroupMount[],
  memberships: readonly CgroupMembership[],
): { groups: V1Groups } | { missing: V1Controller } {
  const groups: Partial<Record<V1Controller, string>> = {};
  for (const controller of V1_CONTROLLERS) {
    const membership = memberships.find((m) => m.controllers.includes(controller));
    const mount = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(controller));
    const directory = membership && mount ? directoryOf(mount, membership.path) : undefined;
    if (directory === undefined) return { missing: controller };
    groups[controller] = directory;
  }
  return { groups: groups as V1Groups };
}

export interface CgroupDetection {
  cgroups?: ActionCgroups;
  /** Why there are none, or why cgroup v2 was not used. */
  reasons: string[];
}

export async function detectActionCgroups(
  files = { mountinfo: '/proc/self/mountinfo', cgroup: '/proc/self/cgroup' },
): Promise<CgroupDetection> {
  const reasons: string[] = [];
  let mounts: CgroupMount[];
  let memberships: CgroupMembership[];
  try {
    mounts = parseCgroupMounts(await readFile(files.mountinfo, 'utf8'));
    memberships = parseCgroupMemberships(await readFile(files.cgroup, 'utf8'));
  } catch (error) {
    return { reasons: [`cannot read ${files.mountinfo} and ${files.cgroup}: ${(error as Error).message}`] };
  }
  const v2 = v2GroupOf(mounts, memberships);
  if (v2 === undefined) reasons.push("cgroup v2: not mounted, or the worker's group is not visible");
  else {
    try {
      return { cgroups: await CgroupV2.open(v2), reasons };
    } catch (error) {
      reasons.push(`cgroup v2: ${(error as Error).message}`);
    }
  }
  const v1 = v1GroupsOf(mounts, memberships);
  if ('missing' in v1) reasons.push(`cgroup v1: no ${v1.missing} hierarchy`);
  else {
    try {
      return { cgroups: await CgroupV1.open(v1.groups), reasons };
    } catch (error) {
      reasons.push(`cgroup v1: ${(error as Error).message}`);
    }
  }
  return { reasons };
}
