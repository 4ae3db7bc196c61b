/**
 * The slot's group, with fake cgroups: kept while the limits stay the same,
 * replaced when they change, each action's OOM kills counted from the group's
 * cumulative counter, removed once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ActionCgroups, ActionGroup, ActionLimits } from './actionCgroups.js';
import { SlotGroup } from './slotGroup.js';

class FakeGroup implements ActionGroup {
  readonly procsFiles: string[];
  readonly pidsMaxFile: string;
  oomKills = 0;
  removed = 0;
  constructor(
    readonly name: string,
    readonly limits: ActionLimits,
  ) {
    this.procsFiles = [`${name}/cgroup.procs`];
    this.pidsMaxFile = `${name}/pids.max`;
  }
  async usage() {
    return { oomKills: this.oomKills };
  }
  oomKillCount(): number {
    return this.oomKills;
  }
  async remove(): Promise<void> {
    this.removed++;
  }
}

class FakeCgroups implements ActionCgroups {
  readonly description = 'fake';
  readonly parentDirectories = [];
  readonly made: FakeGroup[] = [];
  async create(name: string, limits: ActionLimits): Promise<ActionGroup> {
    const group = new FakeGroup(name, limits);
    this.made.push(group);
    return group;
  }
}

const LIMITS: ActionLimits = { memoryBytes: 1 << 30, cpuMillicores: 2000, maxProcesses: 4096 };
const MAXIMA: ActionLimits = { memoryBytes: 1 << 32, cpuMillicores: 4000, maxProcesses: 8192 };

describe("a slot's group", () => {
  test('is made once and kept for actions with the same limits', async () => {
    const cgroups = new FakeCgroups();
    const slot = new SlotGroup(cgroups, 'slot-0', MAXIMA);
    const first = await slot.groupFor(LIMITS);
    const second = await slot.groupFor({ ...LIMITS });
    assert.equal(first, second);
    // And the helper's home, with the maxima.
    assert.deepEqual(
      cgroups.made.map((group) => [group.name, group.limits]),
      [
        ['slot-0.helper', MAXIMA],
        ['slot-0.0', LIMITS],
      ],
    );
    assert.deepEqual(slot.homeProcsFiles, ['slot-0.helper/cgroup.procs']);
  });

  test('is replaced, the old one removed first, when an action asks for other limits', async () => {
    const cgroups = new FakeCgroups();
    const slot = new SlotGroup(cgroups, 'slot-1', MAXIMA);
    await slot.groupFor(LIMITS);
    const other = await slot.groupFor({ ...LIMITS, maxProcesses: 20 });
    assert.deepEqual(
      cgroups.made.map((group) => [group.name, group.removed]),
      [
        ['slot-1.helper', 0],
        ['slot-1.0', 1],
        ['slot-1.1', 0],
      ],
    );
    assert.equal((other as unknown as FakeGroup).limits.maxProcesses, 20);
  });

  test("counts an action's OOM kills as the growth of the group's counter while it ran", async () => {
    const cgroups = new FakeCgroups();
    const slot = new SlotGroup(cgroups, 'slot-2', MAXIMA);
    const group = (await slot.groupFor(LIMITS)) as unknown as FakeGroup;
    group.oomKills = 2;
    assert.equal(slot.oomKillsSinceGroupFor(), 2);
    await slot.groupFor(LIMITS);
    assert.equal(slot.oomKillsSinceGroupFor(), 0, 'the first action killed, not the second');
    await slot.groupFor(LIMITS);
    group.oomKills = 3;
    assert.equal(slot.oomKillsSinceGroupFor(), 1);
  });

  test('does not count the kills of an action whose end was not counted against the next one', async () => {
    const cgroups = new FakeCgroups();
    const slot = new SlotGroup(cgroups, 'slot-3', MAXIMA);
    const group = (await slot.groupFor(LIMITS)) as unknown as FakeGroup;
    group.oomKills = 1; // The action failed before its kills were counted.
    await slot.groupFor(LIMITS);
    assert.equal(slot.oomKillsSinceGroupFor(), 0);
  });

  test('is removed once, with the home group, and made again if needed', async () => {
    const cgroups = new FakeCgroups();
    const slot = new SlotGroup(cgroups, 'slot-4', MAXIMA);
    const group = (await slot.groupFor(LIMITS)) as unknown as FakeGroup;
    await slot.remove();
    await slot.remove();
    assert.deepEqual(
      cgroups.made.map((made) => made.removed),
      [1, 1],
    );
    assert.notEqual(await slot.groupFor(LIMITS), group);
  });
});
