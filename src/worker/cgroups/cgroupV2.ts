/**
 * Action groups on cgroup v2, inside the subtree delegated to the worker (systemd's
 * Delegate=yes, or a container's own cgroup namespace).
 *
 * cgroup v2 lets a group hand controllers to its children only while it holds no
 * process itself, so the worker's own group becomes:
 *
 *   OWN/                   memory cpu pids enabled for its children
 *   OWN/granary-worker/    the processes that were in OWN (the worker; granary serve too)
 *   OWN/granary-actions/   memory cpu pids enabled for its children
 *   OWN/granary-actions/PID.action-XXXX/   one per running action, with its limits
 *
 * A worker started again inside OWN/granary-worker (granary serve restarting its
 * embedded worker) takes OWN as its own group again.
 */
import { access, mkdir, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
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
  processesIn,
  readNumber,
  readOptional,
  readOptionalSync,
  removeGroup,
  writeIfPresent,
  writeValue,
} from './cgroupFiles.js';

export const V2_CONTROLLERS = ['memory', 'cpu', 'pids'] as const;
export const WORKER_LEAF = 'granary-worker';
export const ACTIONS_PARENT = 'granary-actions';

export interface CgroupV2Options {
  /** How a group directory is removed: rmdir (tests of a plain directory tree pass a recursive removal). */
  removeDirectory?: (path: string) => Promise<void>;
}

export class CgroupV2 implements ActionCgroups {
  readonly description: string;
  readonly parentDirectories: readonly string[];

  private constructor(
    private readonly parent: string,
    private readonly removeDirectory: (path: string) => Promise<void>,
  ) {
    this.description = `cgroup v2 under ${parent}`;
    this.parentDirectories = [parent];
  }

  /**
   * Sets up the worker's group `ownGroup` (its directory, from /proc/self/cgroup) as
   * described in the file comment. Throws, saying why, when it cannot be done
   * (controllers missing, the subtree not delegated to this user).
   */
  static async open(ownGroup: string, options: CgroupV2Options = {}): Promise<CgroupV2> {
    const base = basename(ownGroup) === WORKER_LEAF ? dirname(ownGroup) : ownGroup;
    const available = ((await readOptional(join(base, 'cgroup.controllers'))) ?? '').trim().split(/\s+/);
    const missing = V2_CONTROLLERS.filter((name) => !available.includes(name));
    if (missing.length > 0) {
      throw new Error(`the controllers ${missing.join(', ')} are not available to ${base} (cgroup.controllers)`);
    }
    await enableForChildren(base, async () => {
      // Only a group without processes may enable controllers for its children, except
      // the hierarchy's real root (the one group without cgroup.type), whose processes
      // (the whole host's) must stay where they are.
      if ((await readOptional(join(base, 'cgroup.type'))) === undefined) return;
      const leaf = join(base, WORKER_LEAF);
      await mkdir(leaf, { recursive: true });
      for (const pid of await processesIn(join(base, 'cgroup.procs'))) {
        await writeValue(join(leaf, 'cgroup.procs'), pid).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ESRCH') throw error; // A process that exited meanwhile.
        });
      }
    });
    const parent = join(base, ACTIONS_PARENT);
    const removeDirectory = options.removeDirectory ?? rmdir;
    await prepareParent(parent, removeDirectory);
    await enableForChildren(parent, async () => {});
    return new CgroupV2(parent, removeDirectory);
  }

  async create(name: string, limits: ActionLimits): Promise<ActionGroup> {
    const directory = join(this.parent, groupName(name));
    await mkdir(directory);
    const group = new GroupV2(directory, this.removeDirectory);
    try {
      await writeValue(join(directory, 'memory.max'), limits.memoryBytes);
      // Without swap accounting (no memory.swap.max) there is nothing to say.
      await writeIfPresent(join(directory, 'memory.swap.max'), 0);
      await writeValue(join(directory, 'cpu.max'), `${cpuQuotaMicros(limits.cpuMillicores)} ${CPU_PERIOD_MICROS}`);
      await writeValue(join(directory, 'pids.max'), limits.maxProcesses);
    } catch (error) {
      await group.remove();
      throw error;
    }
    return group;
  }
}

/** Adds the controllers missing from `directory`'s cgroup.subtree_control, after `makeRoom` if any are. */
async function enableForChildren(directory: string, makeRoom: () => Promise<void>): Promise<void> {
  const enabled = ((await readOptional(join(directory, 'cgroup.subtree_control'))) ?? '').trim().split(/\s+/);
  const missing = V2_CONTROLLERS.filter((name) => !enabled.includes(name));
  if (missing.length === 0) return;
  await makeRoom();
  await writeValue(join(directory, 'cgroup.subtree_control'), missing.map((name) => `+${name}`).join(' '));
}

class GroupV2 implements ActionGroup {
  readonly procsFiles: readonly string[];
  readonly pidsMaxFile: string;

  constructor(
    private readonly directory: string,
    private readonly removeDirectory: (path: string) => Promise<void>,
  ) {
    this.procsFiles = [join(directory, 'cgroup.procs')];
    this.pidsMaxFile = join(directory, 'pids.max');
  }

  async usage(): Promise<ActionGroupUsage> {
    const [events, cpu, peak] = await Promise.all([
      readOptional(join(this.directory, 'memory.events')),
      readOptional(join(this.directory, 'cpu.stat')),
      readNumber(join(this.directory, 'memory.peak')), // Linux 5.19 and later.
    ]);
    const cpuStat = keyedNumbers(cpu);
    return {
      oomKills: keyedNumbers(events).get('oom_kill') ?? 0,
      peakMemoryBytes: peak,
      cpuMicros: cpuStat.get('usage_usec'),
      throttledPeriods: cpuStat.get('nr_throttled'),
    };
  }

  oomKillCount(): number {
    return keyedNumbers(readOptionalSync(join(this.directory, 'memory.events'))).get('oom_kill') ?? 0;
  }

  async remove(): Promise<void> {
    const killLeft = async () => {
      // cgroup.kill (Linux 5.14) kills the whole group at once; older kernels, one by one.
      const killFile = join(this.directory, 'cgroup.kill');
      const canKillAll = await access(killFile).then(
        () => true,
        () => false,
      );
      if (canKillAll) await writeValue(killFile, 1);
      else await killProcessesIn(this.procsFiles[0] as string);
    };
    await removeGroup(this.directory, killLeft, this.removeDirectory);
  }
}
