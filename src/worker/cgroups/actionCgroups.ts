/**
 * Per-action control groups: what the worker needs from cgroups, whatever their
 * version. An action gets a group of its own with a memory, CPU and process-count
 * limit; its first process enters the group before it runs anything (see
 * commandInGroup), so every process of the action is born inside it; after the
 * command ends the worker reads whether the kernel's OOM killer struck, then kills
 * what is left and removes the group.
 *
 * Two implementations: cgroup v2 (cgroupV2.ts, a subtree delegated to the worker)
 * and cgroup v1 (cgroupV1.ts, one hierarchy per controller). detectActionCgroups
 * (cgroupDetection.ts) picks the one this host lets the worker use.
 */
import type { SpawnPlan } from '../sandbox.js';

/** The limits of one action's group. */
export interface ActionLimits {
  /** Memory (RAM, and no swap where the kernel can say so), bytes. */
  readonly memoryBytes: number;
  /** CPU time per wall-clock time, in thousandths of a CPU (1500 is one and a half CPUs). */
  readonly cpuMillicores: number;
  /** Processes and threads alive at once. */
  readonly maxProcesses: number;
}

/** What the group saw, read after the command ended. */
export interface ActionGroupUsage {
  /** Processes the OOM killer killed in the group. */
  readonly oomKills: number;
  /** Highest memory use, bytes, where the kernel reports it. */
  readonly peakMemoryBytes?: number;
  /** CPU time used by the group, microseconds. */
  readonly cpuMicros?: number;
  /** Scheduling periods in which the CPU limit stopped the group. */
  readonly throttledPeriods?: number;
}

export interface ActionGroup {
  /** The cgroup.procs files the action's first process writes its pid to (one per v1 hierarchy). */
  readonly procsFiles: readonly string[];
  /** The group's process limit file (pids.max), which a persistent sandbox's helper raises while it forks in the group. */
  readonly pidsMaxFile: string;
  usage(): Promise<ActionGroupUsage>;
  /**
   * The OOM killer's kills in the group since it was made (cumulative), read at
   * once: one small in-kernel file, not worth a hop through the thread pool.
   */
  oomKillCount(): number;
  /** Kills whatever is left in the group and removes it; rejects, saying so, if the group stays. */
  remove(): Promise<void>;
}

export interface ActionCgroups {
  /** Says which cgroups and where, for the worker's start-up line. */
  readonly description: string;
  /** The directories the groups of actions are made in (one per v1 hierarchy). */
  readonly parentDirectories: readonly string[];
  /** A new group named `name` (unique among this worker's live groups) with `limits`. */
  create(name: string, limits: ActionLimits): Promise<ActionGroup>;
}

/** The period of the CPU limit: the kernel's default, 100 ms. */
export const CPU_PERIOD_MICROS = 100_000;

/** The CPU quota per CPU_PERIOD_MICROS for a number of millicores (the kernel's minimum is 1 ms). */
export function cpuQuotaMicros(cpuMillicores: number): number {
  return Math.max(1000, Math.round((cpuMillicores * CPU_PERIOD_MICROS) / 1000));
}

/** The program that puts itself into the group before it runs the command. */
export const SHELL_PATH = '/bin/sh';

/**
 * Writes its own pid into each cgroup.procs file named, then execs the command
 * in place. Race-free where writing the child's pid from the worker after spawn is
 * not: by then bubblewrap may already have forked, and a child forked before the
 * move stays outside the group (and, in cgroup v1, memory charged before the move
 * stays charged to the worker's group). The shell is in the group before the
 * command exists, and children inherit their parent's group at fork.
 */
const ENTER_GROUP_SCRIPT =
  'n=$1; shift; while [ "$n" -gt 0 ]; do ' +
  'echo $$ >"$1" || { echo "granary: cannot enter the action\'s cgroup ($1)" >&2; exit 125; }; ' +
  'shift; n=$((n - 1)); done; exec "$@"';

/** `plan` run by a shell that first enters the group through `procsFiles` (same pid, environment and cwd). */
export function commandInGroup(plan: SpawnPlan, procsFiles: readonly string[]): SpawnPlan {
  return {
    file: SHELL_PATH,
    args: [
      '-c',
      ENTER_GROUP_SCRIPT,
      'granary-cgroup',
      String(procsFiles.length),
      ...procsFiles,
      plan.file,
      ...plan.args,
    ],
    env: plan.env,
    cwd: plan.cwd,
  };
}
