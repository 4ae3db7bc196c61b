import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Code, StatusError } from '../util/status.js';
import { runCommand } from './runner.js';
import { assertSandboxUsable, bubblewrapAvailable, buildSandboxCommand, type SandboxRequest } from './sandbox.js';

const bwrapUsable = await bubblewrapAvailable();
const needsBwrap = { skip: bwrapUsable ? false : 'bubblewrap cannot create namespaces here' };

describe('sandbox', () => {
  let root: string;
  before(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'granary-sandbox-')));
    await mkdir(join(root, 'wd/bin'), { recursive: true });
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await writeFile(join(root, 'wd/bin/tool'), '#!/bin/sh\n');
    await chmod(join(root, 'wd/bin/tool'), 0o755);
    await writeFile(join(root, 'usr/bin/sh'), 'not really a shell');
    await chmod(join(root, 'usr/bin/sh'), 0o755);
  });
  after(() => rm(root, { recursive: true, force: true }));

  const base = (fields: Partial<SandboxRequest>): SandboxRequest => ({
    profile: 'host-tools',
    execRoot: root,
    workingDirectory: 'wd',
    arguments: ['sh', '-c', 'true'],
    environment: [{ name: 'PATH', value: '/usr/bin:/bin' }],
    ...fields,
  });

  test('host-tools mounts the exec root writable at its own path, host tools read-only, and no network', async () => {
    const { plan } = await buildSandboxCommand(base({}));
    assert.ok(plan);
    const args = plan.args.join(' ');
    assert.match(args, /--unshare-net/);
    assert.match(args, /--unshare-pid/);
    assert.match(args, /--unshare-ipc/);
    assert.match(args, /--die-with-parent/);
    assert.ok(args.includes(`--bind ${root} ${root}`));
    assert.ok(args.includes('--ro-bind /usr /usr'));
    assert.ok(args.includes('--ro-bind /etc /etc'));
    assert.ok(args.includes('--tmpfs /tmp'));
    assert.ok(args.includes(`--chdir ${join(root, 'wd')}`));
    assert.ok(args.includes('--clearenv --setenv PATH /usr/bin:/bin'));
    assert.deepEqual(plan.args.slice(plan.args.indexOf('--') + 1), ['/usr/bin/sh', '-c', 'true']);
  });

  test('hermetic makes the input root / and shows nothing of the host', async () => {
    const { plan } = await buildSandboxCommand(
      base({ profile: 'hermetic', environment: [{ name: 'PATH', value: '/usr/bin' }] }),
    );
    assert.ok(plan);
    const args = plan.args.join(' ');
    assert.ok(args.includes(`--bind ${root} /`));
    assert.ok(!args.includes('/etc'));
    assert.ok(!args.includes('--ro-bind'));
    assert.ok(args.includes('--chdir /wd'));
    assert.match(args, /--unshare-net/);
    assert.deepEqual(plan.args.slice(plan.args.indexOf('--') + 1), ['/usr/bin/sh', '-c', 'true']);
  });

  test('arguments[0] with a slash is relative to the working directory, without one it is looked up in PATH', async () => {
    const relative = await buildSandboxCommand(base({ arguments: ['bin/tool'] }));
    assert.equal(relative.program, join(root, 'wd/bin/tool'));
    const viaPath = await buildSandboxCommand(
      base({ arguments: ['tool'], environment: [{ name: 'PATH', value: 'bin:/usr/bin' }] }),
    );
    assert.equal(viaPath.program, join(root, 'wd/bin/tool'));
    const notFound = await buildSandboxCommand(base({ arguments: ['no-such-tool-granary'] }));
    assert.equal(notFound.plan, undefined);
    // Hermetic lookups see only the input root, never the host's /bin.
    const hermetic = await buildSandboxCommand(
      base({ profile: 'hermetic', arguments: ['env'], environment: [{ name: 'PATH', value: '/usr/bin:/bin' }] }),
    );
    assert.equal(hermetic.plan, undefined);
  });

  test('an unusable bubblewrap fails clearly instead of running unsandboxed', async () => {
    const fake = join(root, 'fake-bwrap');
    await writeFile(fake, '#!/bin/sh\necho "bwrap: No permissions to create new namespace" >&2\nexit 1\n');
    await chmod(fake, 0o755);
    await assert.rejects(assertSandboxUsable('host-tools', fake), (e: unknown) => {
      assert.ok(e instanceof StatusError);
      assert.equal(e.code, Code.FAILED_PRECONDITION);
      assert.match(e.message, /No permissions to create new namespace/);
      assert.match(e.message, /unsandboxed/);
      return true;
    });
    await assert.rejects(
      assertSandboxUsable('hermetic', join(root, 'no-such-bwrap')),
      /cannot run on this worker: .*no-such-bwrap is not there; install bubblewrap on the worker \(Debian package bubblewrap/,
    );
    await assertSandboxUsable('none', join(root, 'no-such-bwrap'));
  });

  test('the command sees exactly the environment of the Command', needsBwrap, async () => {
    const { plan } = await buildSandboxCommand(
      base({
        arguments: ['env'],
        environment: [
          { name: 'PATH', value: '/usr/bin:/bin' },
          { name: 'ONLY', value: 'this' },
        ],
      }),
    );
    assert.ok(plan);
    const stdoutPath = join(root, 'env.out');
    const outcome = await runCommand({ ...plan, stdoutPath, stderrPath: join(root, 'env.err'), timeoutMs: 10_000 });
    assert.equal(outcome.exitCode, 0, await readFile(join(root, 'env.err'), 'utf8'));
    const lines = (await readFile(stdoutPath, 'utf8')).trim().split('\n').sort();
    // bubblewrap always sets PWD to the working directory.
    assert.deepEqual(lines, ['ONLY=this', 'PATH=/usr/bin:/bin', `PWD=${join(root, 'wd')}`]);
  });
});
