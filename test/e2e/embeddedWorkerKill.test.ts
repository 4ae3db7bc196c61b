/**
 * The embedded worker of `granary serve` killed with SIGKILL while it runs an
 * action and more work waits in the queue: the farm forgets it at once (its
 * --worker-timeout is far longer than the test may take, so waiting for the
 * session to expire would hang the build), its supervisor starts it again, and
 * the build succeeds with every action run by the new process.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { bazelAsync, remoteExecutionFlags } from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { requireCommand } from '../support/commands.js';
import { useFarm } from '../support/farm.js';
import { descendantsOf } from '../support/processes.js';

const skip = requireCommand('bazel');

/** The embedded worker process below the server, if one runs. */
async function embeddedWorkerPid(serverPid: number): Promise<number | undefined> {
  const below = await descendantsOf(serverPid);
  return below.find((p) => / worker .*--bot-id embedded/.test(p.commandLine))?.pid;
}

describe('the embedded worker killed with SIGKILL while work is queued', { skip, timeout: 8 * 60_000 }, () => {
  const farm = useFarm({
    name: 'embedded-kill',
    embeddedWorkers: 1,
    serveFlags: ['--worker-timeout', '30m'],
  });

  test('is forgotten at once and started again, and the build succeeds', async () => {
    const server = farm.server;
    const workspace = bazelWorkspace(4, farm.path('ws'));
    const seen = server.output().length;
    // One slot: while the slow action runs, the compile and link actions of //:hello wait in the queue.
    const building = bazelAsync(workspace, farm.path('root'), 'build', [
      ...remoteExecutionFlags(farm.url),
      '--jobs=4',
      '//farm:slow',
      '//:hello',
    ]);
    const deadline = Date.now() + 120_000;
    let killedPid: number | undefined;
    while (killedPid === undefined && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      if (!server.output().slice(seen).includes('executing')) continue;
      const pid = await embeddedWorkerPid(server.process.pid as number);
      if (pid === undefined) continue;
      process.kill(pid, 'SIGKILL');
      killedPid = pid;
    }
    assert.ok(killedPid !== undefined, `the embedded worker should have started an action:\n${server.output()}`);

    const result = await building;
    assert.equal(result.status, 0, result.output);
    assert.match(readFileSync(join(workspace, 'bazel-bin', 'farm', 'slow_out.txt'), 'utf8'), /slow action input/);
    const log = server.output().slice(seen);
    assert.match(log, /embedded worker killed by SIGKILL; starting it again in 1 s/);
    const restartedPid = await embeddedWorkerPid(server.process.pid as number);
    assert.ok(restartedPid !== undefined && restartedPid !== killedPid, 'a new embedded worker runs');
  });
});
