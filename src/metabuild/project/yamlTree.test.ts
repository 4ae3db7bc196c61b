import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { throwsAt } from '../../../test/support/project.js';
import { billionLaughs } from '../../../test/support/yamlBomb.js';
import { expectBool, type Plain, parseYaml, rejectUnsupportedDirectives, toPlain } from './yamlTree.js';

describe('parseYaml', () => {
  it('reads every scalar as a string, like BuildStream 1.x', () => {
    const node = parseYaml('a: 1\nb: true\nc: ~\nd: 1.50\ne:\nf: [x, 2]\n', 'f.yaml');
    assert.deepEqual(toPlain(node), { a: '1', b: 'true', c: '~', d: '1.50', e: null, f: ['x', '2'] });
  });

  it('keeps a "__proto__" key as data, not as the prototype of the plain object', () => {
    const plain = toPlain(parseYaml('config:\n  __proto__: {polluted: "yes"}\n', 'f.yaml')) as Record<string, Plain>;
    const config = plain.config as Record<string, Plain>;
    assert.deepEqual(Object.keys(config), ['__proto__']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(config, '__proto__')?.value, { polluted: 'yes' });
    assert.equal((config as { polluted?: unknown }).polluted, undefined);
  });

  it('records the line of every key and value', () => {
    const node = parseYaml('# comment\na: 1\nb:\n  - x\n  - y\n', 'f.yaml');
    assert.equal(node.entries.get('a')!.keyLoc.line, 2);
    const b = node.entries.get('b')!.value;
    assert.equal(b.type, 'seq');
    assert.deepEqual(b.type === 'seq' ? b.items.map((item) => item.loc) : [], [
      { file: 'f.yaml', line: 4 },
      { file: 'f.yaml', line: 5 },
    ]);
  });

  it('keeps block scalars verbatim and folds folded ones', () => {
    const node = parseYaml('a: |\n  x\n  y\nb: >-\n  p\n  q\n', 'f.yaml');
    assert.deepEqual(toPlain(node), { a: 'x\ny\n', b: 'p q' });
  });

  it('resolves aliases', () => {
    assert.deepEqual(toPlain(parseYaml('a: &x [1]\nb: *x\n', 'f.yaml')), { a: ['1'], b: ['1'] });
  });

  it('refuses an alias bomb with file and line instead of expanding it', () => {
    throwsAt(() => parseYaml(billionLaughs(), 'project.conf'), 'project.conf', 10, /malformed YAML: aliases expand/);
  });

  it('treats an empty or comment-only document as an empty mapping', () => {
    assert.equal(parseYaml('# nothing\n', 'f.yaml').entries.size, 0);
  });

  it('reports malformed YAML with file and line', () => {
    throwsAt(
      () => parseYaml('a: 1\nb: [x,\nc: "unterminated\n', 'elements/x.bst'),
      'elements/x.bst',
      3,
      /malformed YAML/,
    );
  });

  it('reports duplicate keys with file and line', () => {
    throwsAt(
      () => parseYaml('a: 1\nb: 2\na: 3\n', 'project.conf'),
      'project.conf',
      3,
      /malformed YAML: Map keys must be unique/,
    );
  });

  it('rejects a top level that is not a mapping', () => {
    throwsAt(() => parseYaml('\n- a\n- b\n', 'f.yaml'), 'f.yaml', 2, /expected a mapping/);
  });

  it('rejects include and conditional directives anywhere', () => {
    throwsAt(
      () => rejectUnsupportedDirectives(parseYaml('a:\n  b:\n    (@): x.yml\n', 'f.yaml')),
      'f.yaml',
      3,
      /'\(@\)' directive \(include\) is not supported/,
    );
    throwsAt(
      () => rejectUnsupportedDirectives(parseYaml('a:\n- (?):\n  - x == y: {}\n', 'f.yaml')),
      'f.yaml',
      2,
      /conditional/,
    );
  });

  it('accepts exactly the BuildStream spellings of booleans', () => {
    const node = parseYaml('a: True\nb: false\nc: yes\n', 'f.yaml');
    assert.equal(expectBool(node.entries.get('a')!.value, 'a'), true);
    assert.equal(expectBool(node.entries.get('b')!.value, 'b'), false);
    throwsAt(() => expectBool(node.entries.get('c')!.value, "'c'"), 'f.yaml', 3, /'c' must be true or false/);
  });
});
