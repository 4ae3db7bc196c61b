/**
 * Action groups on cgroup v1: one hierarchy per controller (memory, cpu, cpuacct,
 * pids; cpu and cpuacct are often mounted together), each with a group for the
 * action under DIR/granary-actions, DIR being the worker's own group in that
 * hierarchy. v1 has no rule against processes in inner groups, so nothing of the
 * worker moves.
 */
import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ActionCgroups,
  type ActionGroup,
  type ActionGroupUsage,
  type ActionLimits,
  CPU_PERIOD_MICROS,
  cpuQuotaMicros,
} from './actionCgroups.js';
import {
  groupName,
  keyedNumbers,
  killProcessesIn,
  prepareParent,
  readNumber,
  readOptional,
  readOptionalSync,
  removeGroup,
  writeIfPresent,
  writeValue,
} from './cgroupFiles.js';
import { ACTIONS_PARENT } from './cgroupV2.js';

export const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];

/** The worker's own group directory in each controller's hierarchy. */
export type V1Groups = Readonly<Record<V1Controller, string>>;

export class CgroupV1 implements ActionCgroups {
  readonly description: string;
  readonly parentDirectories: readonly string[];

  private constructor(private readonly parents: V1Groups) {
    this.parentDirectories = [...new Set(Object.values(parents))];
    this.description = `cgroup v1 under ${this.parentDirectories.join(', ')}`;
  }

  /** Makes (and clears of dead workers' groups) the parent of action groups in each hierarchy. */
  static async open(ownGroups: V1Groups): Promise<CgroupV1> {
    const parents = Object.fromEntries(
      V1_CONTROLLERS.map((controller) => [controller, join(ownGroups[controller], ACTIONS_PARENT)]),
    ) as Record<V1Controller, string>;
    for (const parent of new Set(Object.values(parents))) await prepareParent(parent, rmdir);
    return new CgroupV1(parents);
  }

  async create(name: string, limits: ActionLimits): Promise<ActionGroup> {
    const directories = Object.fromEntries(
      V1_CONTROLLERS.map((controller) => [controller, join(this.parents[controller], groupName(name))]),
    ) as Record<V1Controller, string>;
    const group = new GroupV1(directories);
    try {
      await Promise.all(group.directories.map((directory) => mkdir(directory)));
      const { memory, cpu, pids } = directories;
      // The hierarchies at once (an action's start waits for this); in order within one.
      await Promise.all([
        (async () => {
          // No swapping instead of the limit; then RAM, then RAM plus swap where the
          // kernel accounts swap (it must not be below the RAM limit, so it comes second).
          await writeIfPresent(join(memory, 'memory.swappiness'), 0);
          await writeValue(join(memory, 'memory.limit_in_bytes'), limits.memoryBytes);
          await writeIfPresent(join(memory, 'memory.memsw.limit_in_bytes'), limits.memoryBytes);
        })(),
        (async () => {
          await writeValue(join(cpu, 'cpu.cfs_period_us'), CPU_PERIOD_MICROS);
          await writeValue(join(cpu, 'cpu.cfs_quota_us'), cpuQuotaMicros(limits.cpuMillicores));
        })(),
        writeValue(join(pids, 'pids.max'), limits.maxProcesses),
      ]);
    } catch (error) {
      await group.remove().catch(() => undefined);
      throw error;
    }
    return group;
  }
}

class GroupV1 implements ActionGroup {
  /** Each hierarchy's group once (cpu and cpuacct may share one). */
  readonly directories: readonly string[];
  readonly procsFiles: readonly string[];
  readonly pidsMaxFile: string;

  constructor(private readonly groups: V1Groups) {
    this.directories = [...new Set(Object.values(groups))];
    this.procsFiles = this.directories.map((directory) => join(directory, 'cgroup.procs'));
    this.pidsMaxFile = join(groups.pids, 'pids.max');
  }

  async usage(): Promise<ActionGroupUsage> {
    const { memory, cpu, cpuacct } = this.groups;
    const [oomControl, peak, cpuNanos, cpuStat] = await Promise.all([
      readOptional(join(memory, 'memory.oom_control')), // oom_kill: Linux 4.13 and later.
      readNumber(join(memory, 'memory.max_usage_in_bytes')),
      readNumber(join(cpuacct, 'cpuacct.usage')),
      readOptional(join(cpu, 'cpu.stat')),
    ]);
    return {
      oomKills: keyedNumbers(oomControl).get('oom_kill') ?? 0,
      peakMemoryBytes: peak,
      cpuMicros: cpuNanos === undefined ? undefined : Math.round(cpuNanos / 1000),
      throttledPeriods: keyedNumbers(cpuStat).get('nr_throttled'),
    };
  }

  oomKillCount(): number {
    // oom_kill: Linux 4.13 and later.
    return keyedNumbers(readOptionalSync(join(this.groups.memory, 'memory.oom_control'))).get('oom_kill') ?? 0;
  }

  async remove(): Promise<void> {
    const failures: string[] = [];
    for (const directory of this.directories) {
      const procs = join(directory, 'cgroup.procs');
      await removeGroup(directory, () => killProcessesIn(procs)).catch((error: Error) => failures.push(error.message));
    }
    if (failures.length > 0) throw new Error(failures.join('; '));
  }
}
