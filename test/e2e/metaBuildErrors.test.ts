/**
 * What `granary build` says about broken projects and failing builds, on the
 * embedded farm (XDG_CACHE_HOME in a scratch directory, so nothing is shared):
 * every mistake in a project is an error naming the element file and line, a
 * failing build command is named with the tail of its log, and nothing is
 * recorded for an element that failed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CommandRun } from '../support/commands.js';
import { clientEnvironment, granary, stateLine } from '../support/granaryClient.js';
import { removeQuietly, scratchDirectory, writeFiles } from '../support/scratch.js';
import { makeSysroot, type Sysroot, sysrootUnavailable } from '../support/sysroot.js';

const PROJECT_CONF = 'name: broken\nelement-path: elements\n';

describe('granary build reports mistakes in a project with the element file and line', { timeout: 10 * 60_000 }, () => {
  let scratch: string;
  let env: NodeJS.ProcessEnv;
  let count = 0;

  /** A fresh project made of `files` (project.conf is added), and `granary ARGS` run in it. */
  const inProject = async (files: Record<string, string>, ...args: string[]): Promise<CommandRun> => {
    const project = join(scratch, `project-${++count}`);
    writeFiles(project, { 'project.conf': PROJECT_CONF, ...files });
    return granary(args, project, env);
  };

  /** The run failed with exit code 1 and printed `granary build: <pattern>`. */
  const assertFails = (run: CommandRun, pattern: RegExp) => {
    assert.equal(run.status, 1, run.output);
    assert.match(run.stderr, pattern, run.output);
    assert.doesNotMatch(run.stdout, /element\(s\) built/, 'nothing is built when the project does not load');
  };

  before(() => {
    scratch = scratchDirectory('meta-errors');
    env = clientEnvironment(scratch);
  });

  after(() => {
    if (scratch) removeQuietly(scratch);
  });

  test('malformed YAML', async () => {
    const run = await inProject({ 'elements/app.bst': 'kind: stack\ndepends:\n- [a.bst\n' }, 'build', 'app.bst');
    assertFails(run, /^granary build: elements\/app\.bst line \d+: malformed YAML/m);
  });

  test('an unknown element kind', async () => {
    const run = await inProject({ 'elements/app.bst': 'description: a script\nkind: script\n' }, 'build', 'app.bst');
    assertFails(run, /^granary build: elements\/app\.bst line 2: unknown element kind 'script'/m);
  });

  test('an unknown source kind', async () => {
    const run = await inProject(
      {
        'elements/app.bst': 'kind: import\nsources:\n- kind: local\n  path: files\n- kind: bzr\n  url: lp:foo\n',
        'files/a.txt': 'a\n',
      },
      'build',
      'app.bst',
    );
    assertFails(run, /^granary build: elements\/app\.bst line 5: unknown source kind 'bzr'/m);
  });

  test('a dependency cycle, with every step of it', async () => {
    const run = await inProject(
      {
        'elements/a.bst': 'kind: stack\ndepends:\n- b.bst\n',
        'elements/b.bst': 'kind: stack\ndepends:\n- c.bst\n',
        'elements/c.bst': 'kind: stack\n\ndepends:\n- a.bst\n',
      },
      'build',
      'a.bst',
    );
    assertFails(run, /^granary build: elements\/a\.bst line 3: dependency cycle/m);
    assert.match(run.stderr, /elements\/b\.bst line 3: depends on 'c\.bst'/);
    assert.match(run.stderr, /elements\/c\.bst line 4: depends on 'a\.bst'/);
  });

  test('a dependency on an element file that does not exist', async () => {
    const run = await inProject(
      {
        'elements/app.bst': 'kind: stack\ndescription: app\ndepends:\n- lib.bst\n- missing.bst\n',
        'elements/lib.bst': 'kind: stack\n',
      },
      'build',
      'app.bst',
    );
    assertFails(run, /^granary build: elements\/app\.bst line 5: depends on 'missing\.bst' which does not exist/m);
  });

  test('a local source whose path does not exist', async () => {
    const run = await inProject(
      { 'elements/app.bst': 'kind: import\nsources:\n- kind: local\n  path: files/nothing\n' },
      'build',
      'app.bst',
    );
    assertFails(run, /^granary build: elements\/app\.bst line 3: local source: path "files\/nothing" does not exist/m);
  });

  test('a tar source whose ref does not match fails, records nothing, and builds once the ref is right', async () => {
    const project = join(scratch, 'project-tar');
    writeFiles(project, { 'project.conf': PROJECT_CONF, 'content/a.txt': 'alpha\n' });
    execFileSync('tar', [
      '--create',
      '--file',
      join(project, 'small.tar'),
      '--directory',
      join(project, 'content'),
      'a.txt',
    ]);
    const actual = createHash('sha256')
      .update(readFileSync(join(project, 'small.tar')))
      .digest('hex');
    const wrong = createHash('sha256').update('not the tarball').digest('hex');
    const element = (ref: string) =>
      `kind: import\nsources:\n- kind: tar\n  url: small.tar\n  ref: ${ref}\n  base-dir: ''\n`;
    writeFiles(project, { 'elements/data.bst': element(wrong) });

    const run = await granary(['build', 'data.bst'], project, env);
    assert.equal(run.status, 1, run.output);
    assert.match(run.stderr, stateLine('failed', 'data.bst'), run.output);
    assert.match(
      run.stderr,
      new RegExp(
        `^elements/data\\.bst line 3: tar source small\\.tar: sha256 mismatch: the ref expects ${wrong} but the tarball is ${actual}$`,
        'm',
      ),
    );
    assert.match(run.stdout, /granary: 0 element\(s\) built, 1 failed/);
    assert.match(run.stderr, /^granary build: failed: data\.bst$/m);

    const show = await granary(['show', 'data.bst'], project, env);
    assert.equal(show.status, 0, show.output);
    assert.match(show.stdout, /^buildable\s+[0-9a-f]{16} data\.bst$/m, 'no artifact was recorded');
    const checkout = await granary(['checkout', 'data.bst', join(scratch, 'tar-checkout')], project, env);
    assert.equal(checkout.status, 1, checkout.output);
    assert.match(checkout.stderr, /data\.bst is not built/);

    writeFiles(project, { 'elements/data.bst': element(actual) });
    const fixed = await granary(['build', 'data.bst'], project, env);
    assert.equal(fixed.status, 0, fixed.output);
    assert.match(fixed.stderr, stateLine('built', 'data.bst'), fixed.output);
    const again = await granary(['checkout', 'data.bst', join(scratch, 'tar-checkout')], project, env);
    assert.equal(again.status, 0, again.output);
    assert.equal(readFileSync(join(scratch, 'tar-checkout', 'a.txt'), 'utf8'), 'alpha\n');
  });
});

describe('a build command that fails', { skip: sysrootUnavailable(), timeout: 40 * 60_000 }, () => {
  let scratch: string;
  let project: string;
  let env: NodeJS.ProcessEnv;
  let sysroot: Sysroot;
  let run: CommandRun;

  before(async () => {
    scratch = scratchDirectory('meta-fail');
    env = clientEnvironment(scratch);
    sysroot = makeSysroot();
    project = join(scratch, 'project');
    writeFiles(project, {
      'project.conf': `${PROJECT_CONF}aliases:\n  sysroot: file://${sysroot.path.replace(/[^/]*$/, '')}\n`,
      'elements/base.bst': `kind: import\nsources:\n- kind: tar\n  url: sysroot:sysroot.tar\n  ref: ${sysroot.sha256}\n  base-dir: ''\n`,
      'elements/fails.bst': [
        'kind: manual',
        'build-depends:',
        '- base.bst',
        'config:',
        '  build-commands:',
        '  - echo about to fail',
        '  - |',
        '    echo the last words',
        '    false',
        '    echo never printed',
        '  install-commands:',
        '  - mkdir -p "%{install-root}/never"',
        '',
      ].join('\n'),
      'elements/after.bst': 'kind: stack\ndepends:\n- fails.bst\n',
    });
    run = await granary(['build', 'after.bst'], project, env);
  });

  after(() => {
    if (scratch) removeQuietly(scratch);
  });

  test('exits non-zero, naming the failing command and showing the end of its log', () => {
    assert.equal(run.status, 1, run.output);
    assert.match(run.stderr, stateLine('built', 'base.bst'), run.output);
    assert.match(run.stderr, stateLine('failed', 'fails.bst'), run.output);
    assert.match(
      run.stderr,
      /^elements\/fails\.bst: command failed: build-commands 2\/2: echo the last words \(exit code 1\)$/m,
    );
    const tail = run.stderr.slice(run.stderr.indexOf('--- last lines of the log ---'));
    assert.match(tail, /^about to fail\nthe last words$/m, run.stderr);
    assert.doesNotMatch(run.output, /never printed/);
    assert.match(run.stderr, /^\[\d{2}:\d{2}\] skipped\s+after\.bst$/m, 'what depends on it is skipped');
    assert.match(run.stdout, /granary: 1 element\(s\) built, 1 failed/);
    assert.match(run.stderr, /^granary build: failed: fails\.bst$/m);
  });

  test('records no artifact: the element stays buildable and has no log', async () => {
    const show = await granary(['show', 'after.bst'], project, env);
    assert.equal(show.status, 0, show.output);
    assert.deepEqual(
      show.stdout
        .trim()
        .split('\n')
        .map((line) => line.replace(/\s+[0-9a-f]{16}\s+/, ' ')),
      ['cached base.bst', 'buildable fails.bst', 'waiting after.bst'],
    );
    const log = await granary(['log', 'fails.bst'], project, env);
    assert.equal(log.status, 1, log.output);
    assert.match(log.stderr, /fails\.bst is not built/);
  });

  test('fails again when built again, rather than reusing a failure', async () => {
    const again = await granary(['build', 'fails.bst'], project, env);
    assert.equal(again.status, 1, again.output);
    assert.match(again.stderr, stateLine('cached', 'base.bst'), again.output);
    assert.match(again.stderr, /command failed: build-commands 2\/2/);
  });
});
