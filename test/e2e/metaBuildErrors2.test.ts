/**
 * What `granary build` says about mistakes in BuildStream 2 projects: each is
 * an error naming the file and line, and nothing is built. Where the sid root
 * is available, BuildStream 2.8.1 (`bst show`) must refuse the same project
 * too, so every case is a mistake by BuildStream 2's rules, not a Granary
 * limitation (the one exception, a local Python plugin, says so).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CommandRun } from '../support/commands.js';
import { clientEnvironment, granary } from '../support/granaryClient.js';
import { removeQuietly, scratchDirectory, writeFiles } from '../support/scratch.js';
import { inSidrootAsync, prepareSidroot } from '../support/sidroot.js';

const sid = prepareSidroot();
const CONF = 'name: broken\nmin-version: 2.0\nelement-path: elements\n';
const MAKE_PLUGIN = 'plugins:\n- origin: pip\n  package-name: buildstream-plugins\n  elements: [make]\n';

describe('granary build reports mistakes in BuildStream 2 projects with the file and line', {
  timeout: 15 * 60_000,
}, () => {
  let scratch: string;
  let env: NodeJS.ProcessEnv;
  let count = 0;

  /** A fresh project of `files` (project.conf unless given), `granary build app.bst` in it, and bst's verdict. */
  const inProject = async (
    files: Record<string, string>,
  ): Promise<{ run: CommandRun; bst: number | null | undefined }> => {
    const project = join(scratch, `project-${++count}`);
    writeFiles(project, { 'project.conf': CONF, ...files });
    const run = await granary(['build', 'app.bst'], project, env);
    let bst: number | null | undefined;
    if (!sid.skip && !sid.error) {
      const shown = await inSidrootAsync(sid.root, ['bst', '--no-colors', 'show', 'app.bst'], {
        binds: [scratch],
        cwd: project,
        env: { HOME: scratch },
      });
      bst = shown.status;
    }
    return { run, bst };
  };

  /** Granary failed with `granary build: <pattern>` and built nothing; bst (when available) failed too. */
  const assertFails = ({ run, bst }: { run: CommandRun; bst: number | null | undefined }, pattern: RegExp) => {
    assert.equal(run.status, 1, run.output);
    assert.match(run.stderr, pattern, run.output);
    assert.doesNotMatch(run.stdout, /element\(s\) built/, 'nothing is built when the project does not load');
    if (bst !== undefined) assert.notEqual(bst, 0, 'BuildStream 2.8.1 refuses the project too');
  };

  before(() => {
    scratch = scratchDirectory('meta-errors2');
    env = clientEnvironment(scratch);
  });

  after(() => {
    if (scratch) removeQuietly(scratch);
  });

  test('a correct project loads in both (so the refusals below are about the mistakes)', async () => {
    const { run, bst } = await inProject({
      'elements/base.bst': 'kind: stack\n',
      'elements/app.bst': 'kind: stack\ndepends:\n- base.bst\n',
    });
    assert.equal(run.status, 0, run.output);
    if (bst !== undefined) assert.equal(bst, 0, 'bst show accepts the project');
  });

  test('a project for another BuildStream version', async () => {
    const result = await inProject({ 'project.conf': 'name: broken\nmin-version: 3.0\n', 'app.bst': 'kind: stack\n' });
    assertFails(result, /^granary build: project\.conf line 2: project requires BuildStream 3/m);
  });

  test('a BuildStream 1 key in a BuildStream 2 project.conf', async () => {
    const result = await inProject({
      'project.conf': `${CONF}format-version: 18\n`,
      'elements/app.bst': 'kind: stack\n',
    });
    assertFails(result, /^granary build: project\.conf line 4: unknown key 'format-version' in project\.conf/m);
  });

  test('a plugin kind the project does not declare', async () => {
    const result = await inProject({ 'elements/app.bst': 'description: x\nkind: make\n' });
    assertFails(
      result,
      /^granary build: elements\/app\.bst line 2: element kind 'make' is not declared in project\.conf 'plugins'/m,
    );
  });

  test('a condition on an option that does not exist', async () => {
    const result = await inProject({
      'elements/app.bst': 'kind: stack\nvariables:\n  (?):\n  - arch == "x86_64":\n      a: b\n',
    });
    assertFails(
      result,
      /^granary build: elements\/app\.bst line 4: cannot evaluate condition 'arch == "x86_64"': 'arch' is undefined/m,
    );
  });

  test('an assertion', async () => {
    const result = await inProject({
      'project.conf': `${CONF}options:\n  ok:\n    type: bool\n    description: d\n    default: false\n`,
      'elements/app.bst': 'kind: stack\n(?):\n- not ok:\n    (!): this project needs ok=true\n',
    });
    assertFails(result, /^granary build: elements\/app\.bst line 4: this project needs ok=true/m);
  });

  test('YAML anchors', async () => {
    const result = await inProject({ 'elements/app.bst': 'kind: stack\nvariables:\n  a: &v x\n  b: *v\n' });
    assertFails(result, /^granary build: elements\/app\.bst line 3: YAML anchors and aliases are not allowed/m);
  });

  test('an include that does not exist', async () => {
    const result = await inProject({ 'elements/app.bst': 'kind: stack\n(@): include/missing.yml\n' });
    assertFails(
      result,
      /^granary build: elements\/app\.bst line 2: included file 'include\/missing\.yml' does not exist/m,
    );
  });

  test('a stack with a build-only dependency', async () => {
    const result = await inProject({
      'elements/base.bst': 'kind: stack\n',
      'elements/app.bst': 'kind: stack\nbuild-depends:\n- base.bst\n',
    });
    assertFails(
      result,
      /^granary build: elements\/app\.bst line 3: all dependencies of a stack element must be both build and runtime/m,
    );
  });

  test('a dependency on a junction, and on an element its project does not have', async () => {
    const junction = {
      'project.conf': `${CONF}`,
      'elements/sub.bst': 'kind: junction\nsources:\n- kind: local\n  path: sub\n',
      'sub/project.conf': 'name: sub\nmin-version: 2.0\n',
      'sub/present.bst': 'kind: stack\n',
    };
    assertFails(
      await inProject({ ...junction, 'elements/app.bst': 'kind: stack\ndepends:\n- sub.bst\n' }),
      /^granary build: elements\/app\.bst line 3: cannot depend on the junction 'sub\.bst'/m,
    );
    assertFails(
      await inProject({ ...junction, 'elements/app.bst': 'kind: stack\ndepends:\n- sub.bst:absent.bst\n' }),
      /^granary build: elements\/app\.bst line 3: element 'absent\.bst' does not exist in the project of junction 'sub\.bst'/m,
    );
  });

  test('a build dependency with a config that is not true to strict', async () => {
    const result = await inProject({
      'project.conf': `${CONF}${MAKE_PLUGIN}`,
      'elements/base.bst': 'kind: stack\n',
      'elements/app.bst': 'kind: make\nbuild-depends:\n- filename: base.bst\n  strict: false\n',
    });
    assertFails(result, /^granary build: elements\/app\.bst line 4: setting 'strict' to false is not supported/m);
  });

  test('a kind from a local Python plugin, which Granary cannot run', async () => {
    const project = join(scratch, `project-${++count}`);
    writeFiles(project, {
      'project.conf': `${CONF}plugins:\n- origin: local\n  path: plugins\n  elements: [mine]\n`,
      'plugins/mine.py': '',
      'elements/app.bst': 'kind: mine\n',
    });
    const run = await granary(['build', 'app.bst'], project, env);
    assert.equal(run.status, 1, run.output);
    assert.match(
      run.stderr,
      /^granary build: elements\/app\.bst line 1: element kind 'mine' is a local Python plugin \(plugins, declared at project\.conf line 7\); Granary cannot run Python plugins/m,
    );
  });
});
