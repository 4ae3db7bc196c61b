/**
 * The persistent sandbox and its spawn helper, for real (root and bubblewrap):
 * exit statuses, signals, timeouts and cancellation that take the whole process
 * tree down, nothing of an action left for the next one (processes, /tmp,
 * /dev/shm, System V IPC), the exact environment and working directory, output
 * files, the cgroup seam, and the helper's refusal to run outside a sandbox.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { processWithArgumentExists } from '../../test/support/worker.js';
import { DEFAULT_ACTION_USER } from './actionUser.js';
import { commandInGroup } from './cgroups/actionCgroups.js';
import { PersistentSandbox, SandboxPool } from './persistentSandbox.js';
import { bubblewrapAvailable, buildSandboxCommand } from './sandbox.js';

const asRoot = process.getuid?.() === 0;
const sandboxAsRoot = {
  skip: asRoot && (await bubblewrapAvailable()) ? false : 'needs root and a bubblewrap that can create namespaces',
};

describe('a persistent sandbox', sandboxAsRoot, () => {
  let scratch: string;
  let sandbox: PersistentSandbox;
  let runs = 0;

  before(async () => {
    scratch = await realpath(await mkdtemp(join(tmpdir(), 'granary-persistent-')));
    sandbox = new PersistentSandbox({ directory: join(scratch, 'slot'), actionUser: DEFAULT_ACTION_USER });
    assert.equal(await sandbox.ready, true);
  });
  after(async () => {
    await sandbox?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  /** Runs `script` with /bin/sh as the action user in a new action directory of the slot, as the worker would. */
  async function run(
    script: string,
    options: { env?: Record<string, string>; timeoutMs?: number; signal?: AbortSignal; procsFiles?: string[] } = {},
  ) {
    const directory = join(sandbox.directory, `action-${runs++}`);
    const root = join(directory, 'root');
    await mkdir(join(root, 'wd'), { recursive: true });
    await chmod(directory, 0o711);
    await chmod(root, 0o777);
    await chmod(join(root, 'wd'), 0o777);
    const environment = Object.entries(options.env ?? { PATH: '/usr/bin:/bin' }).map(([name, value]) => ({
      name,
      value,
    }));
    const { inSandbox } = await buildSandboxCommand({
      profile: 'host-tools',
      execRoot: root,
      workingDirectory: 'wd',
      arguments: ['/bin/sh', '-c', script],
      environment,
      actionUser: DEFAULT_ACTION_USER,
    });
    assert.ok(inSandbox);
    const stdoutPath = join(directory, 'stdout');
    const stderrPath = join(directory, 'stderr');
    const outcome = await sandbox.run({
      ...(options.procsFiles ? commandInGroup(inSandbox, options.procsFiles) : inSandbox),
      stdoutPath,
      stderrPath,
      timeoutMs: options.timeoutMs ?? 30_000,
      killGraceMs: 200,
      signal: options.signal,
    });
    const stdout = await readFile(stdoutPath, 'utf8');
    const stderr = await readFile(stderrPath, 'utf8');
    return { outcome, stdout, stderr, root };
  }

  test('exit statuses and output files, with their sizes', async () => {
    const { outcome, stdout, stderr } = await run('echo out; echo err >&2; exit 3');
    assert.equal(outcome.exitCode, 3);
    assert.equal(outcome.timedOut, false);
    assert.equal(stdout, 'out\n');
    assert.equal(stderr, 'err\n');
    assert.equal(outcome.stdoutBytes, 4);
    assert.equal(outcome.stderrBytes, 4);
    const quiet = await run('true');
    assert.equal(quiet.outcome.exitCode, 0);
    assert.equal(quiet.outcome.stdoutBytes, 0);
  });

  test('a command killed by a signal exits with 128 + its number', async () => {
    const { outcome } = await run('kill -USR1 $$');
    assert.equal(outcome.exitCode, 128 + 10);
  });

  test('the environment is exactly the one given (plus PWD, as bubblewrap sets it), in the given directory', async () => {
    const { stdout, root } = await run('/usr/bin/env; /bin/pwd', { env: { ONLY: 'this', PATH: '/usr/bin:/bin' } });
    const lines = stdout.trim().split('\n');
    const cwd = lines.pop();
    assert.equal(cwd, join(root, 'wd'));
    assert.deepEqual(lines.sort(), ['ONLY=this', 'PATH=/usr/bin:/bin', `PWD=${join(root, 'wd')}`]);
  });

  test('the command runs as the action user, without capabilities', async () => {
    const { stdout } = await run('id -u; id -g; grep CapEff /proc/self/status');
    assert.deepEqual(stdout.trim().split('\n'), ['65534', '65534', 'CapEff:\t0000000000000000']);
  });

  test('no process of an action outlives it, even one in a session of its own', async () => {
    const { outcome } = await run('setsid sleep 918273 & nohup sleep 918274 >/dev/null 2>&1 & exit 0');
    assert.equal(outcome.exitCode, 0);
    assert.equal(await processWithArgumentExists('918273'), false);
    assert.equal(await processWithArgumentExists('918274'), false);
  });

  test('a timeout stops the whole process tree, one that ignores SIGTERM too', async () => {
    const { outcome } = await run("trap '' TERM; sleep 918275 & setsid sleep 918276 & sleep 918277", {
      timeoutMs: 300,
    });
    assert.equal(outcome.timedOut, true);
    assert.notEqual(outcome.exitCode, 0);
    for (const marker of ['918275', '918276', '918277']) assert.equal(await processWithArgumentExists(marker), false);
  });

  test('cancellation stops the command and is reported only once it has', async () => {
    const abort = new AbortController();
    const running = run('sleep 918278', { signal: abort.signal });
    setTimeout(() => abort.abort(), 200);
    const { outcome } = await running;
    assert.equal(outcome.cancelled, true);
    assert.equal(await processWithArgumentExists('918278'), false);
  });

  test('/tmp, /dev/shm and System V IPC are empty for the next action', async () => {
    const first = await run(
      'echo x > /tmp/left-918279; mkdir -p /tmp/d-918279/e; echo y > /dev/shm/left-918279; ipcmk -M 4096 >/dev/null && echo made',
    );
    assert.equal(first.stdout, 'made\n');
    const second = await run('ls -A /tmp /dev/shm; ipcs -m | grep -c 0x || true');
    assert.doesNotMatch(second.stdout, /918279/);
    assert.match(second.stdout, /^0$/m);
  });

  test('a command in a cgroup: its process writes its own pid to cgroup.procs, then execs the command', async () => {
    const procs = join(sandbox.directory, 'cgroup.procs');
    await writeFile(procs, '');
    const { stdout, outcome } = await run('echo $$', { procsFiles: [procs] });
    assert.equal(outcome.exitCode, 0);
    assert.equal((await readFile(procs, 'utf8')).trim(), stdout.trim());
  });

  test('a program that cannot be started is an error of the run, not of the sandbox', async () => {
    const directory = join(sandbox.directory, 'action-missing');
    await mkdir(directory, { recursive: true });
    const outcome = await sandbox.run({
      file: '/no/such/program',
      args: [],
      env: {},
      cwd: '/',
      stdoutPath: join(directory, 'stdout'),
      stderrPath: join(directory, 'stderr'),
      timeoutMs: 10_000,
    });
    assert.equal(outcome.exitCode, -1);
    assert.ok(outcome.spawnError);
    assert.equal(sandbox.usable, true);
    assert.equal((await run('exit 0')).outcome.exitCode, 0);
  });
});

describe('the sandbox pool', sandboxAsRoot, () => {
  test('gives each slot its own sandbox and directory, reuses idle ones and replaces a stopped one', async () => {
    const scratch = await realpath(await mkdtemp(join(tmpdir(), 'granary-pool-')));
    const pool = new SandboxPool({ directory: scratch, actionUser: DEFAULT_ACTION_USER, prestart: 1 });
    try {
      const first = pool.acquire();
      const second = pool.acquire();
      assert.ok(first && second);
      assert.equal(await first.ready, true);
      assert.equal(await second.ready, true);
      assert.notEqual(first.directory, second.directory);
      pool.release(first);
      assert.equal(pool.acquire(), first);
      first.kill();
      pool.release(first);
      const third = pool.acquire();
      assert.ok(third && third !== first && third !== second);
      pool.release(second);
      // Released while still starting: dropped, and stopped once started.
      pool.release(third);
    } finally {
      await pool.close();
    }
    // Each helper is started with its slot's directory as its argument: none is left running.
    for (let slot = 0; slot < 3; slot++) {
      const argument = join(scratch, `slot-${slot}`);
      for (let i = 0; i < 100 && (await processWithArgumentExists(argument)); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(await processWithArgumentExists(argument), false, argument);
    }
    await rm(scratch, { recursive: true, force: true });
  });
});

describe('the spawn helper outside a sandbox', () => {
  test('refuses to run (it would signal every process of its user)', async () => {
    const source = await readFile(new URL('./spawnHelper.js', import.meta.url), 'utf8');
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', source, tmpdir()], {
      input: '',
      encoding: 'utf8',
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /not in a PID namespace of its own/);
  });
});
