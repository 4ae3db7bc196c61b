/**
 * Per-action limits on this machine's real cgroups (v2 when delegated, else v1),
 * as root: an action over its memory limit is killed and reported, a fork bomb
 * stops at its process limit, a CPU limit throttles, and no group is left behind;
 * in a slot's persistent sandbox the same, with the slot's group kept between actions.
 */
import assert from 'node:assert/strict';
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blobText, type Harness, newHarness, runAction } from '../../../test/support/worker.js';
import type { ExecuteResponse, Platform_Property } from '../../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code } from '../../util/status.js';
import { type ActionLimits, DEFAULT_MAX_PROCESSES } from '../actionLimits.js';
import { SandboxPool } from '../persistentSandbox.js';
import { runCommand } from '../runner.js';
import { bubblewrapAvailable } from '../sandbox.js';
import { type ActionCgroups, commandInGroup } from './actionCgroups.js';
import { detectActionCgroups } from './cgroupDetection.js';

const detection = process.getuid?.() === 0 ? await detectActionCgroups() : { reasons: ['not root'] };
const cgroups = detection.cgroups;
const bwrapUsable = await bubblewrapAvailable();
const skip = !cgroups
  ? `no usable cgroups here: ${detection.reasons.join('; ')}`
  : !bwrapUsable
    ? 'bubblewrap cannot create namespaces here'
    : false;

const MAXIMA: ActionLimits = { memoryBytes: 1024 ** 3, cpuMillicores: 2000, maxProcesses: DEFAULT_MAX_PROCESSES };

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** This process's groups still present in the parents' directories. */
async function groupsLeft(of: ActionCgroups): Promise<string[]> {
  const left: string[] = [];
  for (const parent of of.parentDirectories) {
    for (const name of await readdir(parent)) if (name.startsWith(`${process.pid}.`)) left.push(join(parent, name));
  }
  return left;
}

/** Runs `sh -c script` as nobody under this machine's cgroups, with the platform's limits. */
function runLimited(
  h: Harness,
  script: string,
  platform: Platform_Property[],
  sandboxes?: SandboxPool,
): Promise<ExecuteResponse> {
  return runAction(
    h,
    { arguments: ['sh', '-c', script], platform },
    {
      defaultTimeoutMs: 60_000,
      actionUser: { uid: 65534, gid: 65534 },
      limits: { cgroups: cgroups as ActionCgroups, maxima: MAXIMA },
      sandboxes,
    },
  );
}

describe('per-action cgroup limits', { skip, timeout: 120_000 }, () => {
  const limits = cgroups as ActionCgroups;
  let h: Harness;
  before(async () => {
    h = await newHarness();
  });
  after(async () => {
    await h.close();
  });

  const run = (script: string, platform: Platform_Property[]) => runLimited(h, script, platform);

  test('an action allocating past its memory limit is killed, with exit code 137 and a line on stderr', async () => {
    // dd fills a 256 MiB buffer; the limit is 64 MiB.
    const response = await run('dd if=/dev/zero of=/dev/null bs=256M count=1 && echo survived', [
      { name: 'memory-limit', value: '64MiB' },
    ]);
    assert.equal(response.status?.code ?? 0, Code.OK, response.status?.message);
    assert.equal(response.result?.exitCode, 137);
    assert.equal(await blobText(h.cas, response.result?.stdoutDigest), '');
    const stderr = await blobText(h.cas, response.result?.stderrDigest);
    assert.match(stderr ?? '', /granary: the action was killed: it exceeded its memory limit of 64MiB\n$/);
    assert.deepEqual(await groupsLeft(limits), []);
  });

  test('the same allocation under a larger limit succeeds without a word about memory', async () => {
    const response = await run('dd if=/dev/zero of=/dev/null bs=32M count=1 2>/dev/null && echo survived', [
      { name: 'memory-limit', value: '256MiB' },
    ]);
    assert.equal(response.result?.exitCode, 0, await blobText(h.cas, response.result?.stderrDigest));
    assert.equal(await blobText(h.cas, response.result?.stdoutDigest), 'survived\n');
    assert.equal(await blobText(h.cas, response.result?.stderrDigest), '');
  });

  test('a fork bomb stops at the process limit', async () => {
    // Bounded (200 at most) so that a broken limit cannot take the machine down.
    const bomb = 'i=0; while [ $i -lt 200 ]; do sleep 3 & echo started; i=$((i + 1)); done; echo all started';
    const response = await run(bomb, [{ name: 'process-limit', value: '20' }]);
    const stdout = (await blobText(h.cas, response.result?.stdoutDigest)) ?? '';
    const started = stdout.split('\n').filter((line) => line === 'started').length;
    assert.notEqual(response.result?.exitCode, 0);
    assert.ok(!stdout.includes('all started'), 'the loop did not get to the end');
    // The shell is one of the 20; each started sleep is another.
    assert.ok(started <= 19 && started >= 1, `${started} processes started`);
    assert.match((await blobText(h.cas, response.result?.stderrDigest)) ?? '', /fork/i);
    assert.deepEqual(await groupsLeft(limits), []);
  });

  test('a CPU limit throttles: a busy loop gets about its share of CPU time', async () => {
    const group = await limits.create('cpu-test', { ...MAXIMA, cpuMillicores: 100 });
    try {
      const plan = { file: '/usr/bin/timeout', args: ['1.5', '/bin/sh', '-c', 'while :; do :; done'], env: {} };
      const outcome = await runCommand({
        ...commandInGroup({ ...plan, cwd: h.directory }, group.procsFiles),
        stdoutPath: join(h.directory, 'cpu-stdout'),
        stderrPath: join(h.directory, 'cpu-stderr'),
        timeoutMs: 60_000,
      });
      assert.equal(outcome.exitCode, 124, 'timeout(1) ended the loop');
      const usage = await group.usage();
      const wallMicros = (outcome.endMs - outcome.startMs) * 1000;
      assert.ok(usage.cpuMicros !== undefined && usage.throttledPeriods !== undefined);
      // At most 10 ms per 100 ms period, and one period of slack.
      assert.ok(
        usage.cpuMicros <= wallMicros * 0.1 + 100_000,
        `${usage.cpuMicros} µs of CPU in ${wallMicros} µs under a 0.1 CPU limit`,
      );
      assert.ok(usage.throttledPeriods > 0, 'the group was throttled');
    } finally {
      await group.remove();
    }
    assert.deepEqual(await groupsLeft(limits), []);
  });

  test('a request above the worker maximum is refused with FAILED_PRECONDITION, and nothing runs', async () => {
    const response = await run('echo ran', [{ name: 'cpu-limit', value: '3' }]);
    assert.equal(response.status?.code, Code.FAILED_PRECONDITION);
    assert.match(response.status?.message ?? '', /cpu-limit=3 is above this worker's maximum of 2 CPU/);
    assert.equal(response.result, undefined);
  });

  test('an action asking for no limit gets the maxima, and its group is removed', async () => {
    const responses = await Promise.all([run('echo one', []), run('echo two', []), run('exit 3', [])]);
    assert.deepEqual(
      responses.map((response) => response.result?.exitCode),
      [0, 0, 3],
    );
    assert.deepEqual(await groupsLeft(limits), []);
  });
});

describe("limits in a slot's persistent sandbox, whose group is kept from one action to the next", {
  skip,
  timeout: 120_000,
}, () => {
  const limits = cgroups as ActionCgroups;
  let h: Harness;
  let sandboxes: SandboxPool;
  before(async () => {
    h = await newHarness();
    sandboxes = new SandboxPool({
      directory: join(h.workDirectory, 'builds'),
      actionUser: { uid: 65534, gid: 65534 },
      extraBinds: limits.parentDirectories,
      prestart: 1,
    });
  });
  after(async () => {
    await sandboxes.close();
    await h.close();
  });

  const run = (script: string, platform: Platform_Property[]) => runLimited(h, script, platform, sandboxes);
  const memory64 = [{ name: 'memory-limit', value: '64MiB' }];

  test('an action over its memory limit is killed; the next action in the same group is not reported killed', async () => {
    const killed = await run('dd if=/dev/zero of=/dev/null bs=256M count=1 && echo survived', memory64);
    assert.equal(killed.result?.exitCode, 137, await blobText(h.cas, killed.result?.stderrDigest));
    assert.match(
      (await blobText(h.cas, killed.result?.stderrDigest)) ?? '',
      /granary: the action was killed: it exceeded its memory limit of 64MiB\n$/,
    );
    const groups = await groupsLeft(limits);
    // The slot's group, and its helper's home group, in each hierarchy.
    assert.equal(groups.length, 2 * limits.parentDirectories.length, `the slot's group is kept: ${groups}`);
    const next = await run('dd if=/dev/zero of=/dev/null bs=16M count=1 2>/dev/null && echo survived', memory64);
    assert.equal(next.result?.exitCode, 0, await blobText(h.cas, next.result?.stderrDigest));
    assert.equal(await blobText(h.cas, next.result?.stdoutDigest), 'survived\n');
    assert.equal(await blobText(h.cas, next.result?.stderrDigest), '');
    assert.deepEqual(await groupsLeft(limits), groups, 'the same group, reused');
  });

  test('the action is born in the group, as the action user; the helper goes home; other limits, a new group', async () => {
    const response = await run('id -u; cat /proc/self/cgroup', [{ name: 'process-limit', value: '20' }]);
    const stdout = (await blobText(h.cas, response.result?.stdoutDigest)) ?? '';
    assert.equal(response.result?.exitCode, 0, stdout);
    assert.match(stdout, /^65534$/m);
    const groups = await groupsLeft(limits);
    assert.equal(groups.length, 2 * limits.parentDirectories.length, `${groups}`);
    const actionGroups = groups.filter((group) => !group.endsWith('.helper'));
    const homes = groups.filter((group) => group.endsWith('.helper'));
    assert.equal(actionGroups.length, limits.parentDirectories.length);
    for (const group of actionGroups) {
      const name = group.split('/').at(-1) as string;
      assert.ok(stdout.includes(`/${name}\n`), `${stdout} names ${name}`);
      // Nothing left in it, the helper included.
      assert.equal((await readFile(join(group, 'cgroup.procs'), 'utf8')).trim(), '');
      // Its process limit is the action's again (raised only while the helper forked in it).
      const pidsMax = join(group, 'pids.max');
      if (await exists(pidsMax)) assert.equal((await readFile(pidsMax, 'utf8')).trim(), '20');
    }
    // The helper is in its home group, alone.
    for (const home of homes) {
      assert.equal((await readFile(join(home, 'cgroup.procs'), 'utf8')).trim().split('\n').length, 1);
    }
  });

  test('an action asking for one process still starts (the helper does not count against it)', async () => {
    const response = await run('exec echo alone', [{ name: 'process-limit', value: '1' }]);
    assert.equal(response.result?.exitCode, 0, await blobText(h.cas, response.result?.stderrDigest));
    assert.equal(await blobText(h.cas, response.result?.stdoutDigest), 'alone\n');
  });

  test('a fork bomb stops at the process limit, and the next action may start processes again', async () => {
    const bomb = 'i=0; while [ $i -lt 200 ]; do sleep 3 & echo started; i=$((i + 1)); done; echo all started';
    const response = await run(bomb, [{ name: 'process-limit', value: '20' }]);
    const stdout = (await blobText(h.cas, response.result?.stdoutDigest)) ?? '';
    const started = stdout.split('\n').filter((line) => line === 'started').length;
    assert.ok(!stdout.includes('all started'), 'the loop did not get to the end');
    assert.ok(started <= 19 && started >= 1, `${started} processes started`);
    const next = await run('i=0; while [ $i -lt 10 ]; do sleep 0 & i=$((i + 1)); done; wait; echo ok', [
      { name: 'process-limit', value: '20' },
    ]);
    assert.equal(await blobText(h.cas, next.result?.stdoutDigest), 'ok\n');
  });

  test('closing the pool removes the group', async () => {
    await run('true', []);
    assert.notDeepEqual(await groupsLeft(limits), []);
    await sandboxes.close();
    assert.deepEqual(await groupsLeft(limits), []);
  });
});
