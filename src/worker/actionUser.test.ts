import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  blobText,
  dir,
  file,
  type Harness,
  minimalShellRoot,
  newHarness,
  runAction,
} from '../../test/support/worker.js';
import { Code } from '../util/status.js';
import { actionUserFor, DEFAULT_ACTION_USER } from './actionUser.js';
import { sandboxProfileFor } from './executeAction.js';
import { SandboxPool } from './persistentSandbox.js';
import { bubblewrapAvailable } from './sandbox.js';

const asRoot = process.getuid?.() === 0;
const sandboxAsRoot = {
  skip: asRoot && (await bubblewrapAvailable()) ? false : 'needs root and a bubblewrap that can create namespaces',
};

describe('actionUserFor', () => {
  test('auto is nobody for a root worker and nobody else for another user', () => {
    assert.deepEqual(actionUserFor('auto', 0), DEFAULT_ACTION_USER);
    assert.equal(actionUserFor('auto', 1000), undefined);
    assert.equal(actionUserFor('root', 0), undefined);
  });

  test('UID and UID:GID name a user; 0, garbage and a worker that is not root are refused', () => {
    assert.deepEqual(actionUserFor('4242', 0), { uid: 4242, gid: 4242 });
    assert.deepEqual(actionUserFor('4242:100', 0), { uid: 4242, gid: 100 });
    for (const bad of ['0', '0:0', 'nobody', '-1', '12:', '99999999999']) {
      assert.throws(() => actionUserFor(bad, 0), /--action-user/, bad);
    }
    assert.throws(() => actionUserFor('4242', 1000), /needs a worker running as root/);
  });
});

describe('actions of a root worker', () => {
  let h: Harness;
  before(async () => {
    h = await newHarness();
  });
  after(async () => {
    await h.close();
  });

  const STATUS_LINE =
    'while read -r line; do case "$line" in CapEff*|CapBnd*|Uid*) echo "$line";; esac; done < /proc/self/status';

  for (const persistent of [false, true]) {
    const where = persistent ? "in the slot's persistent sandbox" : 'in a sandbox of their own';
    test(
      `run host-tools commands as the unprivileged user, writing outputs but not the staged inputs, ${where}`,
      sandboxAsRoot,
      async () => {
        const sandboxes = persistent
          ? new SandboxPool({ directory: h.workDirectory, actionUser: DEFAULT_ACTION_USER, prestart: 1 })
          : undefined;
        const response = await runAction(
          h,
          {
            arguments: [
              'sh',
              '-c',
              `${STATUS_LINE}; echo made > out/made.txt; echo changed >> input.txt || echo input refused; mktemp -p /tmp >/dev/null && echo tmp ok; "$PWD/tools/tool.sh"`,
            ],
            env: { PATH: '/usr/bin:/bin' },
            inputs: {
              'input.txt': file('from the cache\n'),
              out: dir(),
              tools: dir({ 'tool.sh': file('#!/bin/sh\necho tool ran\n', true) }),
            },
            outputFiles: ['out/made.txt'],
          },
          { actionUser: DEFAULT_ACTION_USER, sandboxes },
        );
        await sandboxes?.close();
        // Nothing of the action is left in the slot's directory for the next one.
        if (persistent) assert.deepEqual(await readdir(join(h.workDirectory, 'slot-0')), []);
        assert.equal(response.status?.code, Code.OK, response.status?.message);
        const stdout = (await blobText(h.cas, response.result?.stdoutDigest)) ?? '';
        assert.equal(response.result?.exitCode, 0, `${stdout}${await blobText(h.cas, response.result?.stderrDigest)}`);
        assert.match(stdout, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
        assert.match(stdout, /^CapEff:\s+0+$/m);
        assert.match(stdout, /^CapBnd:\s+0+$/m);
        assert.match(stdout, /^input refused$/m);
        assert.match(stdout, /^tmp ok$/m);
        // By absolute path too: the exec root's parents on the host may be private to root.
        assert.match(stdout, /^tool ran$/m);
        assert.equal(await blobText(h.cas, response.result?.outputFiles[0]?.digest), 'made\n');
      },
    );
  }

  test('run hermetic commands as root without the capabilities that reach the host', sandboxAsRoot, async () => {
    const response = await runAction(
      h,
      {
        arguments: ['sh', '-c', `${STATUS_LINE}; echo built > /work/out.txt`],
        env: { PATH: '/bin' },
        inputs: { ...(await minimalShellRoot()), work: dir() },
        workingDirectory: 'work',
        outputPaths: ['out.txt'],
        platform: [{ name: 'sandbox', value: 'hermetic' }],
      },
      { sandbox: sandboxProfileFor, actionUser: DEFAULT_ACTION_USER },
    );
    assert.equal(response.status?.code, Code.OK, response.status?.message);
    const stdout = (await blobText(h.cas, response.result?.stdoutDigest)) ?? '';
    assert.match(stdout, /^Uid:\s+0\s+0\s+0\s+0$/m);
    // CAP_CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID and SYS_CHROOT only: 0x400fb.
    assert.match(stdout, /^CapEff:\s+0+400fb$/m);
    assert.equal(await blobText(h.cas, response.result?.outputFiles[0]?.digest), 'built\n');
  });
});
