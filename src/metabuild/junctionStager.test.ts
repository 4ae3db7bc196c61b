import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { removeProjects, writeProject } from '../../test/support/project.js';
import { run } from '../../test/support/sources.js';
import { junctionStager } from './junctionStager.js';
import { loadProject } from './project/index.js';

after(removeProjects);

const GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@example.com',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@example.com',
};

/** A git repository holding a BuildStream 2 subproject (with an option) in `sub/`; returns its URL and commit. */
async function subprojectRepository(): Promise<{ url: string; commit: string }> {
  const repo = await writeProject({
    'sub/project.conf': [
      'name: greetings',
      'min-version: 2.0',
      'element-path: elements',
      'options:',
      '  volume:',
      '    type: enum',
      '    description: How loud',
      '    values: [quiet, loud]',
      '    default: quiet',
      '    variable: volume',
      '',
    ].join('\n'),
    'sub/elements/shout.bst': 'kind: manual\nconfig:\n  install-commands:\n  - echo %{volume} from %{project-name}\n',
  });
  const git = (...args: string[]) => run('git', args, repo, GIT_IDENTITY).trim();
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-q', '-m', 'subproject');
  return { url: pathToFileURL(repo).href, commit: git('rev-parse', 'HEAD') };
}

describe('junctions to a subproject in a git repository', () => {
  it('stage the commit once and load the subproject with the options the junction sets', async () => {
    const { url, commit } = await subprojectRepository();
    const project = await writeProject({
      'project.conf': [
        'name: app',
        'min-version: 2.0',
        'element-path: elements',
        'plugins:',
        '- origin: pip',
        '  package-name: buildstream-plugins',
        '  sources: [git]',
        'aliases:',
        `  upstream: ${url.slice(0, url.lastIndexOf('/') + 1)}`,
        '',
      ].join('\n'),
      'elements/greetings.bst': [
        'kind: junction',
        'sources:',
        '- kind: git',
        `  url: upstream:${url.slice(url.lastIndexOf('/') + 1)}`,
        `  ref: ${commit}`,
        'config:',
        '  path: sub',
        '  options:',
        '    volume: loud',
        '',
      ].join('\n'),
      'elements/app.bst': 'kind: stack\ndepends:\n- greetings.bst:shout.bst\n',
    });
    const cache = join(project, '.cache');
    await mkdir(cache);
    const load = () => loadProject(project, { maxJobs: 1, targets: ['app.bst'], stageJunction: junctionStager(cache) });
    const loaded = await load();
    const shout = loaded.elements.get('greetings.bst:shout.bst');
    assert.ok(shout, 'the subproject element is loaded under its junction');
    assert.equal(shout.project.name, 'greetings');
    assert.equal(shout.config.type, 'build');
    assert.deepEqual(shout.config.type === 'build' ? shout.config.installCommands : [], ['echo loud from greetings']);
    assert.deepEqual(
      loaded.elements.get('app.bst')?.dependencies.map((d) => d.name),
      ['greetings.bst:shout.bst'],
    );

    // A second load finds the staged commit in the cache instead of staging it again.
    await writeFile(join(cache, 'junctions', 'marker'), '');
    await load();
    assert.equal((await readdir(join(cache, 'junctions'))).filter((name) => name !== 'marker').length, 1);
  });

  it('report a commit the repository does not have at the junction', async () => {
    const { url } = await subprojectRepository();
    const project = await writeProject({
      'project.conf': `name: app\nmin-version: 2.0\nplugins:\n- origin: pip\n  package-name: buildstream-plugins\n  sources: [git]\n`,
      'greetings.bst': `kind: junction\nsources:\n- kind: git\n  url: ${url}\n  ref: ${'1'.repeat(40)}\n`,
      'app.bst': 'kind: stack\ndepends:\n- greetings.bst:shout.bst\n',
    });
    const cache = join(project, '.cache');
    await mkdir(cache);
    await assert.rejects(
      loadProject(project, { maxJobs: 1, targets: ['app.bst'], stageJunction: junctionStager(cache) }),
      /greetings\.bst line 3: git source .*: commit 1{40} does not exist/,
    );
  });
});
