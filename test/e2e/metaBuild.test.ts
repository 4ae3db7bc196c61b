/**
 * The meta-build client against a real farm: `granary serve --workers 0` and two
 * standalone `granary worker` processes, every client command given
 * `--remote grpc://...`. The project is examples/hello, built on the Debian
 * sysroot of test/e2e/sysroot/make-sysroot.sh, plus three elements added here:
 * system.bst (a compose that includes the sysroot), fresh.bst and fresh-app.bst
 * (never built, for `granary show`).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { helloProject } from '../support/buildStreamProjects.js';
import type { CommandRun } from '../support/commands.js';
import { useFarm } from '../support/farm.js';
import { clientEnvironment, granary, stateLine } from '../support/granaryClient.js';
import type { GranaryProcess } from '../support/granaryProcess.js';
import { writeFiles } from '../support/scratch.js';
import { makeSysroot, sysrootUnavailable } from '../support/sysroot.js';
import { describeTree } from '../support/treeListing.js';

const EXTRA_ELEMENTS = {
  'elements/system.bst': 'kind: compose\nbuild-depends:\n- base.bst\n- stack.bst\n',
  'elements/fresh.bst': [
    'kind: manual',
    'build-depends:',
    '- base.bst',
    'config:',
    '  install-commands:',
    '  - mkdir -p "%{install-root}/fresh"',
    '',
  ].join('\n'),
  'elements/fresh-app.bst': 'kind: stack\nbuild-depends:\n- fresh.bst\n',
};

const executions = (worker: GranaryProcess) => (worker.output().match(/granary worker: executing /g) ?? []).length;

describe('granary build, checkout, show and log against a farm with two standalone workers', {
  skip: sysrootUnavailable(),
  timeout: 40 * 60_000,
}, () => {
  const farm = useFarm({
    name: 'meta-build',
    embeddedWorkers: 0,
    workers: ['worker-1', 'worker-2'].map((name) => ({ name, slots: 2 })),
  });
  let scratch: string;
  let project: string;
  let env: NodeJS.ProcessEnv;
  let firstBuild: CommandRun;

  const client = (...args: string[]) => granary([...args, '--remote', farm.url], project, env);
  const totalExecutions = () => farm.workers.reduce((sum, w) => sum + executions(w), 0);

  before(() => {
    scratch = farm.scratch;
    const sysroot = makeSysroot();
    project = helloProject(join(scratch, 'hello'), sysroot);
    writeFiles(project, EXTRA_ELEMENTS);
    env = clientEnvironment(scratch);
  });

  test('building image.bst and system.bst builds every element they need, running the two build actions on the workers', async () => {
    firstBuild = await client('build', 'image.bst', 'system.bst');
    assert.equal(firstBuild.status, 0, firstBuild.output);
    for (const element of ['base.bst', 'libgreet.bst', 'hello.bst', 'stack.bst', 'image.bst', 'system.bst']) {
      assert.match(firstBuild.stderr, stateLine('built', element), firstBuild.output);
    }
    assert.match(firstBuild.stdout, /granary: 6 element\(s\) built, 0 failed/);
    assert.doesNotMatch(firstBuild.output, /fresh/, 'elements no target needs are not built');
    // libgreet and hello are REAPI actions; import, stack and compose are tree operations.
    assert.equal(totalExecutions(), 2, farm.workers.map((w) => w.output()).join('\n'));
  });

  test('without a terminal the progress is printed as plain lines, one per state change', () => {
    assert.ok(firstBuild, 'needs the first build');
    assert.ok(!firstBuild.output.includes('\u001b'), 'no terminal escape sequences');
    const lines = firstBuild.stderr.split('\n').filter((line) => line !== '');
    assert.ok(lines.length >= 12, firstBuild.stderr);
    for (const line of lines) {
      assert.match(line, /^\[\d{2}:\d{2}\] (waiting|running|built|cached)\s+\S+\.bst( \(.+\))?$/, firstBuild.stderr);
    }
    assert.match(firstBuild.stderr, /^\[\d{2}:\d{2}\] running\s+libgreet\.bst \(building\)$/m);
  });

  test('the checkout of hello.bst is a program that runs and prints the greeting', async () => {
    const directory = join(scratch, 'checkout-hello');
    const result = await client('checkout', 'hello.bst', directory);
    assert.equal(result.status, 0, result.output);
    assert.deepEqual(
      describeTree(directory).map((line) => line.split(' ').slice(0, 3).join(' ')),
      ['d usr', 'd usr/bin', 'f usr/bin/hello x'],
    );
    assert.equal(
      execFileSync(join(directory, 'usr', 'bin', 'hello'), { encoding: 'utf8' }),
      'Hello from Granary, greetings from libgreet\n',
    );
  });

  test('the checkout of image.bst holds the program and the library, not the sysroot that is only a build dependency', async () => {
    const directory = join(scratch, 'checkout-image');
    const result = await client('checkout', 'image.bst', directory);
    assert.equal(result.status, 0, result.output);
    // As in BuildStream: base.bst is a build dependency of hello and libgreet, so it
    // is not in the run-time closure of stack.bst that the compose stages.
    assert.deepEqual(
      describeTree(directory)
        .filter((line) => line.startsWith('f '))
        .map((line) => line.split(' ')[1]),
      ['usr/bin/hello', 'usr/include/greet.h', 'usr/lib/libgreet.a'],
    );
  });

  test('the checkout of system.bst holds the sysroot with the program and the library in it', async () => {
    const directory = join(scratch, 'checkout-system');
    const result = await client('checkout', 'system.bst', directory);
    assert.equal(result.status, 0, result.output);
    for (const path of [
      'usr/bin/hello',
      'usr/lib/libgreet.a',
      'usr/include/greet.h',
      'usr/bin/make',
      'usr/include/stdio.h',
      'etc/os-release',
    ]) {
      assert.ok(existsSync(join(directory, path)), `${path} is in the checkout`);
    }
    assert.ok(lstatSync(join(directory, 'usr/bin/make')).mode & 0o111, 'make is executable');
    assert.equal(readlinkSync(join(directory, 'bin')), 'usr/bin');
    // The sysroot's absolute symlinks are made relative, as BuildStream's compose does.
    assert.equal(readlinkSync(join(directory, 'etc/alternatives/cc')), '../../usr/bin/gcc');
    assert.equal(
      execFileSync(join(directory, 'usr/bin/hello'), { encoding: 'utf8' }),
      'Hello from Granary, greetings from libgreet\n',
    );
  });

  test('a second build of image.bst executes nothing', async () => {
    const executedBefore = totalExecutions();
    const result = await client('build', 'image.bst');
    assert.equal(result.status, 0, result.output);
    assert.match(result.stdout, /granary: 0 element\(s\) built, 0 failed/);
    for (const element of ['base.bst', 'libgreet.bst', 'hello.bst', 'stack.bst', 'image.bst']) {
      assert.match(result.stderr, stateLine('cached', element), result.output);
    }
    assert.doesNotMatch(result.stderr, /running|built/, result.output);
    assert.equal(totalExecutions(), executedBefore, 'no worker executed anything');
  });

  test('granary show reports cached, buildable and waiting elements', async () => {
    const result = await client('show', 'fresh-app.bst');
    assert.equal(result.status, 0, result.output);
    const states = result.stdout
      .trim()
      .split('\n')
      .map((line) => {
        const [state, key, element] = line.split(/\s+/);
        assert.match(key ?? '', /^[0-9a-f]{16}$/, line);
        return `${state} ${element}`;
      });
    assert.deepEqual(states, ['cached base.bst', 'buildable fresh.bst', 'waiting fresh-app.bst']);
  });

  test('granary log libgreet.bst prints the output of its make commands', async () => {
    const result = await client('log', 'libgreet.bst');
    assert.equal(result.status, 0, result.output);
    assert.match(result.stdout, /^cc -O2 -c greet\.c -o greet\.o$/m);
    assert.match(result.stdout, /^ar rcs libgreet\.a greet\.o$/m);
    assert.match(result.stdout, /^cp libgreet\.a \/buildstream-install\/usr\/lib\/libgreet\.a$/m);
  });

  test('changing a source file of libgreet rebuilds libgreet and what depends on it, and nothing else', async () => {
    const source = join(project, 'files', 'libgreet', 'greet.c');
    writeFileSync(
      source,
      readFileSync(source, 'utf8').replace('greetings from libgreet', 'regards from a rebuilt libgreet'),
    );
    const executedBefore = totalExecutions();
    const result = await client('build', 'image.bst');
    assert.equal(result.status, 0, result.output);
    assert.match(result.stderr, stateLine('cached', 'base.bst'), result.output);
    for (const element of ['libgreet.bst', 'hello.bst', 'stack.bst', 'image.bst']) {
      assert.match(result.stderr, stateLine('built', element), result.output);
    }
    assert.doesNotMatch(result.stderr, stateLine('built', 'base.bst'));
    assert.match(result.stdout, /granary: 4 element\(s\) built, 0 failed/);
    assert.equal(totalExecutions(), executedBefore + 2, 'libgreet and hello ran again');

    const directory = join(scratch, 'checkout-hello-2');
    const checkout = await client('checkout', 'hello.bst', directory);
    assert.equal(checkout.status, 0, checkout.output);
    assert.equal(
      execFileSync(join(directory, 'usr', 'bin', 'hello'), { encoding: 'utf8' }),
      'Hello from Granary, regards from a rebuilt libgreet\n',
    );
    const show = await client('show', 'system.bst');
    assert.match(show.stdout, /^cached\s+\S+ base\.bst$/m);
    assert.match(show.stdout, /^buildable\s+\S+ system\.bst$/m, 'system.bst needs rebuilding too');
  });
});
