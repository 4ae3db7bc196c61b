/**
 * The cgroup of a persistent sandbox's slot (persistentSandbox.ts), kept from one
 * action to the next instead of a new group per action.
 *
 * Making a group, writing its limits, reading its usage and removing it cost
 * about sixty file operations per action (four hierarchies in cgroup v1), each a
 * hop through libuv's thread pool, plus the kernel's own work of creating and
 * tearing down a memory cgroup: the largest single part of the worker's CPU per
 * trivial action. A slot runs one action at a time, and before its helper
 * reports an action's end every process of the sandbox but the helper is gone
 * (the helper kills them all and waits until /proc lists none), so the group is
 * empty again when the next action of the slot enters it: reusing it is safe.
 *
 * The group is replaced (the old one removed, a new one made) when an action asks
 * for other limits than the group has; the out-of-memory kills of an action are
 * the growth of the group's cumulative counter while it ran.
 *
 * Next to it the slot has a home group for the sandbox's helper (with the
 * worker's maxima as limits): the helper enters the action's group only to fork
 * the command there, then goes back home (spawnHelper.ts), so that nothing but
 * the action is ever left under the action's limits.
 */
import type { ActionCgroups, ActionGroup, ActionLimits } from './actionCgroups.js';

export class SlotGroup {
  private current: { group: ActionGroup; limits: ActionLimits; oomKillsSeen: number; counted: boolean } | undefined;
  private made = 0;
  private home: ActionGroup | undefined;

  /**
   * `name` is unique among the worker's slots (e.g. 'slot-0'); each group made gets
   * a suffix of its own. `homeLimits` are those of the helper's home group.
   */
  constructor(
    private readonly cgroups: ActionCgroups,
    private readonly name: string,
    private readonly homeLimits: ActionLimits,
  ) {}

  /** The cgroup.procs files of the helper's home group (made by the first groupFor). */
  get homeProcsFiles(): readonly string[] {
    return this.home?.procsFiles ?? [];
  }

  /**
   * The group for the slot's next action: the slot's group when it has these
   * limits, else a new one with them (the old one is removed first). The slot's
   * previous action must be over, and nothing of it left running.
   */
  async groupFor(limits: ActionLimits): Promise<ActionGroup> {
    const current = this.current;
    if (current && sameLimits(current.limits, limits)) {
      // Kills of an action whose end was never counted (it failed on the way) are not the next one's.
      if (!current.counted) current.oomKillsSeen = current.group.oomKillCount();
      current.counted = false;
      return current.group;
    }
    this.home ??= await this.cgroups.create(`${this.name}.helper`, this.homeLimits);
    if (current) {
      this.current = undefined;
      await current.group.remove();
    }
    const group = await this.cgroups.create(`${this.name}.${this.made++}`, limits);
    this.current = { group, limits, oomKillsSeen: 0, counted: false };
    return group;
  }

  /** The OOM killer's kills in the group since groupFor last returned it: those of the action that ran. */
  oomKillsSinceGroupFor(): number {
    const current = this.current;
    if (!current) return 0;
    const count = current.group.oomKillCount();
    const kills = Math.max(0, count - current.oomKillsSeen);
    current.oomKillsSeen = count;
    current.counted = true;
    return kills;
  }

  /** Removes the groups, if any (the slot's sandbox has stopped). */
  async remove(): Promise<void> {
    const current = this.current;
    const home = this.home;
    this.current = undefined;
    this.home = undefined;
    await current?.group.remove();
    await home?.remove();
  }
}

function sameLimits(a: ActionLimits, b: ActionLimits): boolean {
  return a.memoryBytes === b.memoryBytes && a.cpuMillicores === b.cpuMillicores && a.maxProcesses === b.maxProcesses;
}
