/**
 * The cgroup v2 implementation against a plain directory tree laid out like a
 * delegated cgroup: what it writes where (controllers enabled, processes moved to
 * a leaf, limits), what it reads back, and what it removes.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ACTIONS_PARENT, CgroupV2, WORKER_LEAF } from './cgroupV2.js';

const removeTree = (path: string) => rm(path, { recursive: true });
const LIMITS = { memoryBytes: 64 * 1024 ** 2, cpuMillicores: 1500, maxProcesses: 50 };
/** No process has this pid (Linux's pid_max is at most 4194304). */
const DEAD_PID = 999_999_999;

describe('CgroupV2 on a fake delegated group', () => {
  let own: string;
  const text = (...parts: string[]) => readFile(join(own, ...parts), 'utf8');

  beforeEach(async () => {
    own = await mkdtemp(join(tmpdir(), 'granary-cgroup-v2-'));
    await writeFile(join(own, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
    await writeFile(join(own, 'cgroup.subtree_control'), '\n');
    await writeFile(join(own, 'cgroup.procs'), '4242\n4343\n');
    await writeFile(join(own, 'cgroup.type'), 'domain\n');
  });
  afterEach(async () => {
    await rm(own, { recursive: true, force: true });
  });

  test('moves the group’s processes to a leaf, then enables memory, cpu and pids for the action groups', async () => {
    const cgroups = await CgroupV2.open(own, { removeDirectory: removeTree });
    assert.equal(await text(WORKER_LEAF, 'cgroup.procs'), '4343', 'each pid written, the last one last');
    assert.equal(await text('cgroup.subtree_control'), '+memory +cpu +pids');
    assert.equal(await text(ACTIONS_PARENT, 'cgroup.subtree_control'), '+memory +cpu +pids');
    assert.deepEqual(cgroups.parentDirectories, [join(own, ACTIONS_PARENT)]);
  });

  test('moves nothing when the controllers are already enabled for children', async () => {
    await writeFile(join(own, 'cgroup.subtree_control'), 'cpu memory pids\n');
    await CgroupV2.open(own, { removeDirectory: removeTree });
    assert.equal(existsSync(join(own, WORKER_LEAF)), false);
    assert.equal(await text('cgroup.subtree_control'), 'cpu memory pids\n');
  });

  test('in the hierarchy’s real root (no cgroup.type) enables the controllers without moving any process', async () => {
    await rm(join(own, 'cgroup.type'));
    await CgroupV2.open(own, { removeDirectory: removeTree });
    assert.equal(existsSync(join(own, WORKER_LEAF)), false);
    assert.equal(await text('cgroup.subtree_control'), '+memory +cpu +pids');
  });

  test('a worker started inside the leaf uses the group above it', async () => {
    await writeFile(join(own, 'cgroup.subtree_control'), 'memory cpu pids');
    await mkdir(join(own, WORKER_LEAF));
    const cgroups = await CgroupV2.open(join(own, WORKER_LEAF), { removeDirectory: removeTree });
    assert.deepEqual(cgroups.parentDirectories, [join(own, ACTIONS_PARENT)]);
  });

  test('refuses a group without the controllers, naming the missing ones', async () => {
    await writeFile(join(own, 'cgroup.controllers'), 'cpu io\n');
    await assert.rejects(CgroupV2.open(own), /the controllers memory, pids are not available/);
    assert.equal(existsSync(join(own, ACTIONS_PARENT)), false, 'nothing made');
  });

  test('an action group gets its limits, reports OOM kills, CPU use and peak memory, and is removed', async () => {
    const cgroups = await CgroupV2.open(own, { removeDirectory: removeTree });
    const group = await cgroups.create('action-abc', LIMITS);
    const directory = join(own, ACTIONS_PARENT, `${process.pid}.action-abc`);
    assert.deepEqual(group.procsFiles, [join(directory, 'cgroup.procs')]);
    assert.equal(await readFile(join(directory, 'memory.max'), 'utf8'), String(64 * 1024 ** 2));
    assert.equal(await readFile(join(directory, 'memory.swap.max'), 'utf8'), '0');
    assert.equal(await readFile(join(directory, 'cpu.max'), 'utf8'), '150000 100000');
    assert.equal(await readFile(join(directory, 'pids.max'), 'utf8'), '50');

    assert.deepEqual(await group.usage(), {
      oomKills: 0,
      peakMemoryBytes: undefined,
      cpuMicros: undefined,
      throttledPeriods: undefined,
    });
    await writeFile(join(directory, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n');
    await writeFile(join(directory, 'cpu.stat'), 'usage_usec 53000\nuser_usec 50000\nnr_periods 20\nnr_throttled 7\n');
    await writeFile(join(directory, 'memory.peak'), '67100672\n');
    assert.deepEqual(await group.usage(), {
      oomKills: 1,
      peakMemoryBytes: 67100672,
      cpuMicros: 53000,
      throttledPeriods: 7,
    });
    await group.remove();
    assert.equal(existsSync(directory), false);
  });

  test('start-up removes the groups of workers no longer running, and keeps those of live ones', async () => {
    const parent = join(own, ACTIONS_PARENT);
    await mkdir(join(parent, `${DEAD_PID}.action-old`), { recursive: true });
    await mkdir(join(parent, `${process.ppid}.action-live`), { recursive: true });
    await CgroupV2.open(own, { removeDirectory: removeTree });
    assert.equal(existsSync(join(parent, `${DEAD_PID}.action-old`)), false);
    assert.equal(existsSync(join(parent, `${process.ppid}.action-live`)), true);
  });
});
