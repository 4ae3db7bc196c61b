import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { throwsAt } from '../../../test/support/project.js';
import { Variables } from './variables.js';
import { parseYaml } from './yamlTree.js';

const variables = (text: string) => new Variables(parseYaml(text, 'elements/foo.bst'));

describe('Variables', () => {
  it('expands references recursively', () => {
    const v = variables('prefix: /usr\nlibdir: "%{prefix}/%{lib}"\nlib: lib64\n');
    assert.equal(v.get('libdir'), '/usr/lib64');
    assert.equal(v.subst('--libdir=%{libdir}', { file: 'x', line: 1 }), '--libdir=/usr/lib64');
    assert.equal(v.get('missing'), undefined);
    assert.deepEqual(v.toRecord(), { prefix: '/usr', libdir: '/usr/lib64', lib: 'lib64' });
  });

  it('trims values before expanding, as BuildStream does', () => {
    const v = variables('a: |\n\n  text\nb: "  %{a} "\nc: "%{a} %{empty} %{empty}"\nempty: ""\n');
    assert.equal(v.get('a'), 'text');
    assert.equal(v.get('b'), 'text');
    // Trimming happens before expansion, so empty expansions can leave trailing spaces.
    assert.equal(v.get('c'), 'text  ');
  });

  it('has no escape syntax: only %{name} with a valid name is a reference', () => {
    const v = variables('x: X\n');
    assert.equal(v.subst('%%{x} %{ x} %{1x} %{x', { file: 'f', line: 1 }), '%X %{ x} %{1x} %{x');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell variable, not a template
    assert.equal(v.subst('${x} $x', { file: 'f', line: 1 }), '${x} $x');
  });

  it('reports an undefined reference at the variable that uses it', () => {
    throwsAt(
      () => variables('a: 1\nb: "%{a} %{nope}"\n'),
      'elements/foo.bst',
      2,
      /reference to undefined variable 'nope' \(in the value of variable 'b'\)/,
    );
  });

  it('reports an undefined reference in substituted text at that text', () => {
    const v = variables('a: 1\n');
    throwsAt(
      () => v.subst('make %{jobs}', { file: 'elements/foo.bst', line: 9 }),
      'elements/foo.bst',
      9,
      /undefined variable 'jobs'/,
    );
  });

  it('reports cycles with every step and its line', () => {
    throwsAt(
      () => variables('x: 1\na: "%{b}"\nb: "x%{c}"\nc: "%{a}"\n'),
      'elements/foo.bst',
      2,
      /circular variable reference: 'a' \(elements\/foo\.bst line 2\) -> 'b' \(elements\/foo\.bst line 3\) -> 'c' \(elements\/foo\.bst line 4\) -> 'a'/,
    );
    throwsAt(() => variables('self: "%{self}"\n'), 'elements/foo.bst', 1, /'self' .* -> 'self'/);
  });

  it('rejects non-string values', () => {
    throwsAt(() => variables('a: [1]\n'), 'elements/foo.bst', 1, /variable 'a' must be a string, found a list/);
  });
});
