import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { throwsAt } from '../../../test/support/project.js';
import { parseElement } from './elementFile.js';

const FILE = 'elements/app.bst';
const parse = (text: string) => parseElement(text, 'app.bst', FILE);

describe('element files', () => {
  it('reads kind, description and dependencies of every form', () => {
    const element = parse(
      [
        'kind: manual', // 1
        'description: |', // 2
        '  An app.', // 3
        'depends:', // 4
        '- base.bst', // 5
        '- filename: libs/foo.bst', // 6
        '  type: build', // 7
        '- filename: tools.bst', // 8
        '  type: runtime', // 9
        '- filename: all.bst', // 10
        '  type: all', // 11
        'build-depends:', // 12
        '- compiler.bst', // 13
        '- filename: ./libs/bar.bst', // 14
        'runtime-depends:', // 15
        '- base.bst', // 16
        '- libs/foo.bst', // 17
        '',
      ].join('\n'),
    );
    assert.equal(element.kind, 'manual');
    assert.equal(element.description, 'An app.');
    assert.deepEqual(element.dependencies, [
      { name: 'base.bst', type: 'all', file: FILE, line: 5 },
      { name: 'libs/foo.bst', type: 'all', file: FILE, line: 6 },
      { name: 'tools.bst', type: 'runtime', file: FILE, line: 8 },
      { name: 'all.bst', type: 'all', file: FILE, line: 10 },
      { name: 'compiler.bst', type: 'build', file: FILE, line: 13 },
      { name: 'libs/bar.bst', type: 'build', file: FILE, line: 14 },
    ]);
  });

  it('keeps sources as plain data with their location', () => {
    const element = parse(
      'kind: import\nsources:\n- kind: tar\n  url: gnu:hello.tar.gz\n  ref: abc\n- kind: local\n  path: files\n  directory: sub\n',
    );
    assert.equal(element.sources.length, 2);
    const [tar, local] = element.sources;
    assert.deepEqual(
      {
        kind: tar!.kind,
        directory: tar!.directory,
        config: tar!.config,
        line: tar!.line,
        file: tar!.file,
        index: tar!.index,
      },
      {
        kind: 'tar',
        directory: undefined,
        config: { url: 'gnu:hello.tar.gz', ref: 'abc' },
        line: 3,
        file: FILE,
        index: 0,
      },
    );
    assert.deepEqual(
      { directory: local!.directory, config: local!.config, line: local!.line },
      { directory: 'sub', config: { path: 'files' }, line: 6 },
    );
    assert.equal(local!.node.entries.get('path')!.keyLoc.line, 7);
  });

  it('rejects unknown top-level keys with file and line', () => {
    throwsAt(() => parse('kind: manual\n\nsourcs: []\n'), FILE, 3, /^elements\/app\.bst line 3: unknown key 'sourcs'$/);
  });

  it('requires a known kind', () => {
    throwsAt(() => parse('description: x\n'), FILE, 1, /element has no 'kind'/);
    throwsAt(
      () => parse('\nkind: meson\n'),
      FILE,
      2,
      /unknown element kind 'meson' \(supported: autotools, cmake, compose, import, make, manual, stack\)/,
    );
    throwsAt(() => parse('kind: [manual]\n'), FILE, 1, /'kind' must be a string/);
  });

  it('reports malformed YAML with file and line', () => {
    throwsAt(() => parse('kind: manual\nconfig:\n  build-commands: [make\n'), FILE, 4, /malformed YAML/);
  });

  it('checks dependency declarations', () => {
    throwsAt(
      () => parse('kind: stack\ndepends:\n- filename: a.bst\n  type: sometimes\n'),
      FILE,
      4,
      /dependency type 'sometimes'/,
    );
    throwsAt(
      () => parse('kind: stack\nbuild-depends:\n- filename: a.bst\n  type: runtime\n'),
      FILE,
      4,
      /'type' cannot be set in 'build-depends'/,
    );
    throwsAt(
      () => parse('kind: stack\ndepends:\n- filename: a.bst\n  junction: j.bst\n'),
      FILE,
      4,
      /junctions are not supported/,
    );
    throwsAt(() => parse('kind: stack\ndepends:\n- j.bst:a.bst\n'), FILE, 3, /junctions are not supported/);
    throwsAt(
      () => parse('kind: stack\ndepends:\n- filename: a.bst\n  strict: true\n'),
      FILE,
      4,
      /'strict' dependencies are not supported/,
    );
    throwsAt(() => parse('kind: stack\ndepends:\n- type: build\n'), FILE, 3, /dependency has no 'filename'/);
    throwsAt(() => parse('kind: stack\ndepends:\n- ../outside.bst\n'), FILE, 3, /must be a file inside element-path/);
    throwsAt(() => parse('kind: stack\ndepends: a.bst\n'), FILE, 2, /'depends' must be a list/);
    throwsAt(() => parse('kind: stack\ndepends:\n- [a.bst]\n'), FILE, 3, /a dependency must be a filename/);
  });

  it('checks the other sections', () => {
    throwsAt(
      () => parse('kind: manual\nvariables:\n  element-name: x\n'),
      FILE,
      3,
      /'element-name' is set automatically/,
    );
    throwsAt(
      () => parse('kind: manual\nenvironment:\n  A: [x]\n'),
      FILE,
      3,
      /'environment' entry 'A' must be a string/,
    );
    throwsAt(() => parse('kind: manual\nconfig: [x]\n'), FILE, 2, /'config' must be a mapping/);
    throwsAt(() => parse('kind: manual\nsandbox:\n  uid: 0\n'), FILE, 3, /unknown sandbox setting 'uid'/);
    throwsAt(() => parse('kind: manual\nsources:\n- url: x\n'), FILE, 3, /sources\[0\] has no 'kind'/);
    throwsAt(() => parse('kind: manual\nenvironment-nocache: A\n'), FILE, 2, /must be a list/);
    throwsAt(() => parse('kind: manual\nconfig:\n  (@): other.yml\n'), FILE, 3, /include\) is not supported/);
  });
});
