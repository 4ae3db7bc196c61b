import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { removeProjects, writeProject } from '../../test/support/project.js';
import { cacheKey } from './cacheKey.js';
import { loadProject } from './project/index.js';

after(removeProjects);

async function keys(options: (readonly [string, string])[]): Promise<Record<string, string>> {
  const directory = await writeProject({
    'project.conf': [
      'name: p',
      'min-version: 2.0',
      'element-path: elements',
      'options:',
      '  debug:',
      '    type: bool',
      '    description: Debug build',
      '    default: False',
      'variables:',
      '  cflags: -O2',
      '  (?):',
      '  - debug:',
      '      cflags: -O0',
      '',
    ].join('\n'),
    'files/a': 'a',
    'elements/base.bst': 'kind: import\nsources:\n- kind: local\n  path: files\n',
    'elements/other-place.bst': 'kind: import\nsources:\n- kind: local\n  path: files\nconfig:\n  target: /opt\n',
    'elements/app.bst': 'kind: manual\nbuild-depends: [base.bst]\nconfig:\n  build-commands:\n  - cc %{cflags}\n',
  });
  const project = await loadProject(directory, {
    maxJobs: 1,
    targets: ['app.bst', 'other-place.bst'],
    options,
  });
  const result: Record<string, string> = {};
  for (const name of ['base.bst', 'other-place.bst', 'app.bst']) {
    result[name] = cacheKey({ element: project.elements.get(name)!, sources: [], dependencies: [], platform: [] });
  }
  return result;
}

describe('cache keys', () => {
  it('of an import do not change with a variable only commands use, those of build elements do', async () => {
    const release = await keys([]);
    const debug = await keys([['debug', 'true']]);
    assert.equal(debug['base.bst'], release['base.bst']);
    assert.notEqual(debug['app.bst'], release['app.bst']);
  });

  it('of an import still change with where it puts its sources', async () => {
    const release = await keys([]);
    assert.notEqual(release['other-place.bst'], release['base.bst']);
  });
});
