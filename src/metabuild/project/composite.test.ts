import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { throwsAt } from '../../../test/support/project.js';
import { assertNoDirectives, composite, compositeAll } from './composite.js';
import { parseYaml, toPlain } from './yamlTree.js';

const base = (text: string) => parseYaml(text, 'base.yaml');
const over = (text: string) => parseYaml(text, 'over.yaml');

describe('composite', () => {
  it('merges mappings key by key and replaces scalars', () => {
    const result = composite(base('a: 1\nm:\n  x: 1\n  y: 2\n'), over('m:\n  y: 3\n  z: 4\nb: 2\n'));
    assert.deepEqual(toPlain(result), { a: '1', m: { x: '1', y: '3', z: '4' }, b: '2' });
  });

  it('replaces a list with a plain list', () => {
    assert.deepEqual(toPlain(composite(base('l: [a, b]\n'), over('l: [c]\n'))), { l: ['c'] });
  });

  it('appends with (>), prepends with (<), replaces with (=)', () => {
    const list = base('l: [a, b]\n');
    assert.deepEqual(toPlain(composite(list, over('l:\n  (>): [c]\n'))), { l: ['a', 'b', 'c'] });
    assert.deepEqual(toPlain(composite(list, over('l:\n  (<): [c]\n'))), { l: ['c', 'a', 'b'] });
    assert.deepEqual(toPlain(composite(list, over('l:\n  (=): [c]\n'))), { l: ['c'] });
    assert.deepEqual(toPlain(composite(list, over('l:\n  (=): []\n'))), { l: [] });
    assert.deepEqual(toPlain(composite(list, over('l:\n  (=): [x]\n  (<): [p]\n  (>): [q]\n'))), {
      l: ['p', 'x', 'q'],
    });
  });

  it('keeps the locations of composed list items', () => {
    const result = composite(base('l:\n- a\n'), over('\nl:\n  (>):\n  - b\n'));
    const list = result.entries.get('l')!.value;
    assert.equal(list.type, 'seq');
    if (list.type === 'seq') {
      assert.deepEqual(
        list.items.map((item) => item.loc),
        [
          { file: 'base.yaml', line: 2 },
          { file: 'over.yaml', line: 4 },
        ],
      );
    }
  });

  it('keeps a directive with no list beneath for a later layer', () => {
    const result = compositeAll(
      [over('l:\n  (>): [b]\n'), over('l:\n  (<): [a]\n  (>): [c]\n'), over('l:\n  (>): [d]\n')],
      base('x: 1\n'),
    );
    assert.deepEqual(toPlain(result), { x: '1', l: { '(>)': ['b', 'c', 'd'], '(<)': ['a'] } });
    assert.deepEqual(toPlain(composite(base('l: [m]\n'), result)), { x: '1', l: ['a', 'm', 'b', 'c', 'd'] });
  });

  it('drops pending prepends and appends when a later layer replaces', () => {
    const pending = composite(base('{}\n'), over('l:\n  (>): [b]\n'));
    const replaced = composite(pending, over('l:\n  (=): [r]\n'));
    assert.deepEqual(toPlain(composite(base('l: [m]\n'), replaced)), { l: ['r'] });
  });

  it('does not modify its inputs', () => {
    const target = base('m:\n  l: [a]\n');
    composite(target, over('m:\n  l:\n    (>): [b]\n  k: v\n'));
    assert.deepEqual(toPlain(target), { m: { l: ['a'] } });
  });

  it('rejects a mapping mixing directives and keys', () => {
    throwsAt(
      () => composite(base('l: [a]\n'), over('\nl:\n  (>): [b]\n  x: y\n')),
      'over.yaml',
      3,
      /cannot mix list directives/,
    );
  });

  it('rejects a directive whose value is not a list', () => {
    throwsAt(
      () => composite(base('l: [a]\n'), over('l:\n  (>): b\n')),
      'over.yaml',
      2,
      /'\(>\)' list directive needs a list/,
    );
  });

  it('rejects type clashes, naming the overriding line and the original', () => {
    throwsAt(
      () => composite(base('m:\n  x: 1\n'), over('a: 1\nm: scalar\n')),
      'over.yaml',
      2,
      /cannot override 'm' with a string \(defined as a mapping at base\.yaml line 2\)/,
    );
    throwsAt(
      () => composite(base('m:\n  x: s\n'), over('m:\n  x: [a]\n')),
      'over.yaml',
      2,
      /cannot override 'm\.x' with a list/,
    );
    throwsAt(() => composite(base('s: text\n'), over('s:\n  (>): [a]\n')), 'over.yaml', 1, /cannot override 's'/);
  });
});

describe('assertNoDirectives', () => {
  it('reports a directive that found no list', () => {
    const result = composite(base('x: 1\n'), over('config:\n  build-commands:\n    (>): [make]\n'));
    throwsAt(
      () => assertNoDirectives(result),
      'over.yaml',
      3,
      /list directive '\(>\)' on 'config\.build-commands', but no list 'config\.build-commands' exists/,
    );
  });

  it('accepts fully composed data', () => {
    assertNoDirectives(composite(base('l: [a]\n'), over('l:\n  (>): [b]\n')));
  });
});
