/**
 * Granary and BuildStream 1.6.8 build the same project (examples/hello on the
 * Debian sysroot, plus probe.bst, which records what a build sees: environment,
 * working directory, user, umask, max-jobs, the shell's flags, the sandbox's
 * root directory and how a staged absolute symlink reads) and their artifacts
 * must be the same, file by file: paths, contents, executable bits and symlink
 * targets.
 *
 * BuildStream runs non-interactively with every directory it uses in a scratch
 * directory (HOME, XDG_CACHE_HOME, XDG_CONFIG_HOME, XDG_DATA_HOME), sandboxed by
 * bubblewrap (and FUSE, which it uses to stage files); in the project directory:
 *
 *   bst --no-interactive --no-colors build base.bst libgreet.bst hello.bst image.bst probe.bst
 *   bst --no-interactive --no-colors checkout --deps none --no-integrate ELEMENT DIR
 *
 * (`--deps none --no-integrate`: the element's artifact alone, as `granary
 * checkout` writes it.) Granary builds the same elements on its embedded farm.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { helloProject, PROBE_ELEMENT } from '../support/buildStreamProjects.js';
import { requireCommand, runCommand } from '../support/commands.js';
import { clientEnvironment, granary } from '../support/granaryClient.js';
import { removeQuietly, scratchDirectory, writeFiles } from '../support/scratch.js';
import { makeSysroot, sysrootUnavailable } from '../support/sysroot.js';
import { describeTree, treeDifferences } from '../support/treeListing.js';

const ELEMENTS = ['base.bst', 'libgreet.bst', 'hello.bst', 'image.bst', 'probe.bst'];

const skip = requireCommand('bst') || sysrootUnavailable();

describe('Granary and BuildStream 1.6.8 build the same artifacts from the same project', {
  skip,
  timeout: 40 * 60_000,
}, () => {
  let scratch: string;
  let granaryProject: string;
  let bstProject: string;
  let granaryEnv: NodeJS.ProcessEnv;
  let bstEnv: NodeJS.ProcessEnv;

  const bst = (...args: string[]) =>
    runCommand('bst', ['--no-interactive', '--no-colors', ...args], {
      cwd: bstProject,
      env: bstEnv,
      timeoutMs: 20 * 60_000,
    });

  before(async () => {
    scratch = scratchDirectory('meta-vs-bst');
    const sysroot = makeSysroot();
    // Two copies: BuildStream may write into its project directory.
    granaryProject = helloProject(join(scratch, 'granary-project'), sysroot);
    bstProject = helloProject(join(scratch, 'bst-project'), sysroot);
    for (const project of [granaryProject, bstProject]) writeFiles(project, { 'elements/probe.bst': PROBE_ELEMENT });
    granaryEnv = clientEnvironment(join(scratch, 'granary-env'));
    const home = join(scratch, 'bst-env');
    bstEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: join(home, 'home'),
      XDG_CACHE_HOME: join(home, 'cache'),
      XDG_CONFIG_HOME: join(home, 'config'),
      XDG_DATA_HOME: join(home, 'data'),
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
    };
    for (const dir of [bstEnv.HOME, bstEnv.XDG_CACHE_HOME, bstEnv.XDG_CONFIG_HOME, bstEnv.XDG_DATA_HOME]) {
      mkdirSync(dir as string, { recursive: true });
    }
  });

  after(() => {
    if (scratch) removeQuietly(scratch);
  });

  test('bst is BuildStream 1.6.8', () => {
    const version = spawnSync('bst', ['--version'], { encoding: 'utf8', env: bstEnv });
    assert.equal(version.status, 0, `${version.stdout}${version.stderr}`);
    assert.equal(version.stdout.trim(), '1.6.8');
  });

  test('both build every element', async () => {
    const [ours, theirs] = await Promise.all([
      granary(['build', ...ELEMENTS], granaryProject, granaryEnv),
      bst('build', ...ELEMENTS),
    ]);
    assert.equal(ours.status, 0, ours.output);
    assert.equal(theirs.status, 0, theirs.output);
    assert.match(theirs.output, /SUCCESS\s+Build/, theirs.output);
  });

  for (const element of ELEMENTS) {
    test(`the artifacts of ${element} are the same`, async () => {
      const ourDirectory = join(scratch, 'granary-checkouts', element);
      const theirDirectory = join(scratch, 'bst-checkouts', element);
      const ours = await granary(['checkout', element, ourDirectory], granaryProject, granaryEnv);
      assert.equal(ours.status, 0, ours.output);
      const theirs = await bst('checkout', '--deps', 'none', '--no-integrate', element, theirDirectory);
      assert.equal(theirs.status, 0, theirs.output);
      const ourTree = describeTree(ourDirectory);
      const theirTree = describeTree(theirDirectory);
      assert.ok(ourTree.length > 0, 'the artifact is not empty');
      const differences = treeDifferences(ourTree, theirTree);
      assert.deepEqual(differences, { onlyA: [], onlyB: [] }, `onlyA: Granary's checkout, onlyB: BuildStream's`);
    });
  }
});
