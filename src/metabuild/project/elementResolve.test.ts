import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { throwsAt } from '../../../test/support/project.js';
import { parseElement } from './elementFile.js';
import { resolveElement } from './elementResolve.js';
import { ProjectError } from './errors.js';
import { parseProjectConf } from './projectConf.js';
import { parseYaml } from './yamlTree.js';

const resolve = (projectConf: string, element: string, name = 'e.bst') =>
  resolveElement(
    parseProjectConf(parseYaml(projectConf, 'project.conf'), '/p'),
    parseElement(element, name, `elements/${name}`),
    { maxJobs: 4 },
  );

describe('resolveElement', () => {
  it('gives every element the default public data', () => {
    const element = resolve('name: p\n', 'kind: stack\n');
    assert.deepEqual(Object.keys(element.splitRules), ['runtime', 'devel', 'debug', 'doc', 'locale']);
    assert.deepEqual(element.integrationCommands, []);
    assert.deepEqual(Object.keys(element.public), ['bst']);
    assert.deepEqual(element.environmentNocache, []);
  });

  it('lays per-kind public split rules between the project and the element', () => {
    const element = resolve(
      'name: p\nelements:\n  stack:\n    public:\n      bst:\n        split-rules:\n          runtime:\n            (>): [/kind]\n',
      'kind: stack\npublic:\n  bst:\n    split-rules:\n      runtime:\n        (<): [/element]\n',
    );
    assert.deepEqual(element.splitRules.runtime, [
      '/element',
      '/usr/bin/*',
      '/usr/sbin/*',
      '/usr/libexec/*',
      '/usr/lib/lib*.so*',
      '/kind',
    ]);
  });

  it('expands sandbox settings and per-kind overrides', () => {
    const element = resolve(
      'name: p\nvariables:\n  uid: "42"\nelements:\n  manual:\n    sandbox:\n      build-gid: 7\n',
      'kind: manual\nsandbox:\n  build-uid: "%{uid}"\n  build-arch: x86_64\n',
    );
    assert.deepEqual(element.sandbox, { buildUid: 42, buildGid: 7, buildOs: undefined, buildArch: 'x86_64' });
  });

  it('merges nocache lists from project, kind and element without duplicates', () => {
    const element = resolve('name: p\nenvironment-nocache: [V, A]\n', 'kind: make\nenvironment-nocache: [B, A]\n');
    assert.deepEqual(element.environmentNocache, ['V', 'A', 'MAKEFLAGS', 'B']);
  });

  it('rejects a list directive in public data other than split rules', () => {
    throwsAt(
      () => resolve('name: p\n', 'kind: stack\npublic:\n  mine:\n    list:\n      (>): [x]\n'),
      'elements/e.bst',
      5,
      /list directive '\(>\)' on 'public.mine.list'/,
    );
  });

  it('rejects a notparallel value that is not a boolean', () => {
    throwsAt(
      () => resolve('name: p\n', 'kind: make\nvariables:\n  notparallel: sometimes\n'),
      'elements/e.bst',
      3,
      /notparallel/,
    );
  });

  it('reports errors without a location as plain messages', () => {
    const error = new ProjectError(undefined, 'something');
    assert.equal(error.message, 'something');
    assert.equal(error.file, undefined);
  });
});
