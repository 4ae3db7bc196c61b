import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { throwsAt } from '../../../test/support/project.js';
import { composite } from './composite.js';
import { ELEMENT_KINDS, isElementKind, kindDefaults, resolveElementConfig } from './kinds.js';
import { Variables } from './variables.js';
import { emptyMap, parseYaml, toPlain, type YMap } from './yamlTree.js';

const variables = new Variables(
  parseYaml(
    'install-root: /inst\nprefix: /usr\nmake: make\nstrip-binaries: strip-it\nmake-install: make install\n',
    'v',
  ),
);
const config = (kind: (typeof ELEMENT_KINDS)[number], text = '{}\n') => {
  const defaults = kindDefaults(kind).entries.get('config')?.value as YMap | undefined;
  return resolveElementConfig(
    kind,
    composite(defaults ?? emptyMap({ file: 'x', line: 1 }), parseYaml(text, 'elements/e.bst')),
    variables,
  );
};

describe('element kinds', () => {
  it('knows exactly the supported kinds', () => {
    assert.deepEqual([...ELEMENT_KINDS], ['autotools', 'cmake', 'compose', 'import', 'make', 'manual', 'stack']);
    assert.ok(isElementKind('cmake'));
    assert.ok(!isElementKind('script'));
  });

  it('gives manual elements empty command lists except stripping', () => {
    assert.deepEqual(config('manual'), {
      type: 'build',
      configureCommands: [],
      buildCommands: [],
      installCommands: [],
      stripCommands: ['strip-it'],
      createDevShm: false,
    });
  });

  it('ships BuildStream 1.6 defaults for make, autotools and cmake', () => {
    const defaults = (kind: 'make' | 'autotools' | 'cmake') =>
      toPlain(kindDefaults(kind)) as Record<string, Record<string, unknown>>;
    assert.deepEqual(defaults('make').config, {
      'build-commands': ['%{make}'],
      'install-commands': ['%{make-install}'],
      'strip-commands': ['%{strip-binaries}'],
    });
    assert.equal(defaults('make').variables!['make-install-args'], '%{make-args} DESTDIR="%{install-root}" install');
    assert.deepEqual(defaults('autotools').config!['configure-commands'], ['%{autogen}', '%{configure}']);
    assert.equal(defaults('autotools').variables!['make-install'], 'make -j1 DESTDIR="%{install-root}" install');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell variable, not a template
    assert.equal(defaults('cmake').variables!.make, 'cmake --build %{build-dir} -- ${JOBS}');
    assert.deepEqual(defaults('cmake').environment, { JOBS: '-j%{max-jobs}', V: '1' });
    assert.deepEqual(defaults('autotools').environment, { MAKEFLAGS: '-j%{max-jobs}', V: '1' });
    assert.deepEqual(defaults('autotools')['environment-nocache'], ['MAKEFLAGS', 'V']);
  });

  it('expands commands after composing directives', () => {
    const result = config(
      'make',
      'build-commands:\n  (<): [echo pre]\n  (>): ["echo %{prefix}"]\ncreate-dev-shm: true\n',
    );
    assert.equal(result.type, 'build');
    if (result.type === 'build') {
      assert.deepEqual(result.buildCommands, ['echo pre', 'make', 'echo /usr']);
      assert.deepEqual(result.installCommands, ['make install']);
      assert.equal(result.createDevShm, true);
    }
  });

  it('reads import, compose and stack configuration', () => {
    assert.deepEqual(config('import'), { type: 'import', source: '/', target: '/' });
    assert.deepEqual(config('import', 'target: "%{prefix}"\n'), { type: 'import', source: '/', target: '/usr' });
    assert.deepEqual(config('compose'), {
      type: 'compose',
      integrate: true,
      include: [],
      exclude: [],
      includeOrphans: true,
    });
    assert.deepEqual(config('compose', 'include: [runtime]\nintegrate: false\ninclude-orphans: False\n'), {
      type: 'compose',
      integrate: false,
      include: ['runtime'],
      exclude: [],
      includeOrphans: false,
    });
    assert.deepEqual(config('stack'), { type: 'stack' });
  });

  it('rejects keys a kind does not know, and bad values', () => {
    throwsAt(
      () => config('autotools', 'bootstrap-commands: []\n'),
      'elements/e.bst',
      1,
      /unknown key 'bootstrap-commands' in the config of a 'autotools' element/,
    );
    throwsAt(() => config('stack', 'x: 1\n'), 'elements/e.bst', 1, /unknown key 'x'/);
    throwsAt(() => config('compose', '\nintegrate: maybe\n'), 'elements/e.bst', 2, /'integrate' must be true or false/);
    throwsAt(
      () => config('manual', 'build-commands: make\n'),
      'elements/e.bst',
      1,
      /cannot override 'build-commands' with a string \(defined as a list at \(builtin manual defaults\) line \d+\)/,
    );
    throwsAt(() => config('manual', 'create-dev-shm: [x]\n'), 'elements/e.bst', 1, /'create-dev-shm' must be a string/);
    throwsAt(
      () => config('manual', 'build-commands:\n- [make]\n'),
      'elements/e.bst',
      2,
      /'build-commands'\[0\] must be a string/,
    );
    throwsAt(
      () => config('manual', 'build-commands:\n- ok\n- "%{nothing}"\n'),
      'elements/e.bst',
      3,
      /undefined variable 'nothing'/,
    );
  });
});
