/**
 * Nothing a farm starts outlives it. `granary serve` killed with SIGKILL in the
 * middle of an action (its embedded worker running a command in the bubblewrap
 * sandbox), and `granary build` without --remote (its built-in farm) killed with
 * SIGKILL in the middle of an element build: within a few seconds, no process that
 * descended from them is left, and no process still names their data.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { executeRemotely } from '../../src/client/execute.js';
import { GrpcBlobStore } from '../../src/client/grpcBlobStore.js';
import { requireCommand } from '../support/commands.js';
import { useFarm } from '../support/farm.js';
import { clientEnvironment } from '../support/granaryClient.js';
import { descendantsOf, listProcesses, type ProcessInfo, stillAlive } from '../support/processes.js';
import { GRANARY_BIN } from '../support/repository.js';
import { removeQuietly, scratchDirectory, writeFiles } from '../support/scratch.js';
import { makeSysroot, sysrootUnavailable } from '../support/sysroot.js';
import { dir, uploadAction, uploadTree } from '../support/worker.js';

/** How long the kernel and the processes get to wind down after the kill. */
const SETTLE_MS = 10_000;

async function eventually(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const processesNaming = async (text: string) => (await listProcesses()).filter((p) => p.commandLine.includes(text));

const describeProcesses = (processes: readonly ProcessInfo[]) =>
  processes.map((p) => `${p.pid}: ${p.commandLine.slice(0, 200)}`).join('\n');

/**
 * SIGKILLs `child` once `marker` names a running process below it, then waits for
 * every process below it, and every process naming `marker` or `scratch`, to end.
 * Returns the survivors (empty when all is well; they are killed before returning)
 * and what ran below it before.
 */
async function killAndWatch(child: ChildProcess, marker: string, scratch: string) {
  const pid = child.pid as number;
  const running = await eventually(
    async () => (await descendantsOf(pid)).some((p) => p.commandLine.includes(marker)),
    5 * 60_000,
  );
  assert.ok(running, 'the command should be running below the process');
  const below = await descendantsOf(pid);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  let survivors: ProcessInfo[] = [];
  await eventually(async () => {
    const named = [...(await processesNaming(marker)), ...(await processesNaming(scratch))];
    survivors = [...(await stillAlive(below)), ...named.filter((p) => !below.some((b) => b.pid === p.pid))];
    return survivors.length === 0;
  }, SETTLE_MS);
  // A survivor would hold this test's pipes open (and the machine busy): end it before failing.
  for (const survivor of survivors) {
    try {
      process.kill(survivor.pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  return { survivors, below };
}

describe('granary serve killed with SIGKILL', { skip: requireCommand('bwrap'), timeout: 3 * 60_000 }, () => {
  const farm = useFarm({ name: 'serve-kill', embeddedWorkers: 1, serveFlags: ['--sandbox', 'bubblewrap'] });

  test('leaves no process of its own behind: not its embedded worker, not the sandboxed command', async () => {
    const server = farm.server;
    assert.ok(await eventually(async () => /connected as/.test(server.output()), 60_000), server.output());
    const connection = farm.connect();
    const cas = new GrpcBlobStore(connection);
    const marker = `granary-lifetime-${process.pid}-serve`;
    const action = await uploadAction(cas, {
      arguments: ['/bin/sh', '-c', 'sleep 300', marker],
      inputRoot: await uploadTree(cas, { tmp: dir() }),
    });
    const outcome = executeRemotely(connection, action).catch((error: unknown) => error);
    const { survivors, below } = await killAndWatch(server.process, marker, farm.scratch);
    assert.ok(
      below.some((p) => p.commandLine.includes('granary.js worker')),
      `the embedded worker ran below the server:\n${describeProcesses(below)}`,
    );
    assert.deepEqual(describeProcesses(survivors), '', 'processes left behind by the killed server');
    await outcome;
  });
});

describe('granary build without --remote killed with SIGKILL mid-build', {
  skip: sysrootUnavailable() || requireCommand('bwrap'),
  timeout: 20 * 60_000,
}, () => {
  let scratch: string;

  before(() => {
    scratch = scratchDirectory('build-kill');
  });

  after(() => {
    removeQuietly(scratch);
  });

  test('leaves no process of its own or of its built-in farm behind', async () => {
    const sysroot = makeSysroot();
    const marker = `granary-lifetime-${process.pid}-build`;
    const project = join(scratch, 'project');
    writeFiles(project, {
      'project.conf': `name: slow\nelement-path: elements\naliases:\n  sysroot: file://${sysroot.path.replace(/[^/]*$/, '')}\n`,
      'elements/base.bst': `kind: import\nsources:\n- kind: tar\n  url: sysroot:sysroot.tar\n  ref: ${sysroot.sha256}\n  base-dir: ''\n`,
      'elements/slow.bst': [
        'kind: manual',
        'build-depends:',
        '- base.bst',
        'config:',
        '  build-commands:',
        `  - sh -c 'sleep 300' ${marker}`,
        '',
      ].join('\n'),
    });
    const build = spawn(process.execPath, [GRANARY_BIN, 'build', 'slow.bst'], {
      cwd: project,
      env: clientEnvironment(scratch),
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    const { survivors, below } = await killAndWatch(build, marker, scratch);
    assert.ok(
      below.some((p) => p.commandLine.includes('bwrap')),
      `the element built in the sandbox below the client:\n${describeProcesses(below)}`,
    );
    assert.deepEqual(describeProcesses(survivors), '', 'processes left behind by the killed build');
  });
});
