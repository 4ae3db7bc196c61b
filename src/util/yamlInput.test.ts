import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { billionLaughs } from '../../test/support/yamlBomb.js';
import {
  MAX_YAML_ALIAS_EXPANSION,
  MAX_YAML_DEPTH,
  parseYamlInput,
  readYamlValue,
  YamlInputError,
} from './yamlInput.js';

function refuses(text: string, line: number, detail: RegExp): void {
  assert.throws(
    () => parseYamlInput(text),
    (error: unknown) => {
      assert.ok(error instanceof YamlInputError, String(error));
      assert.equal(error.line, line);
      assert.match(error.detail, detail);
      return true;
    },
  );
}

describe('parseYamlInput', () => {
  it('refuses a billion-laughs file, naming the outermost alias', () => {
    refuses(billionLaughs(), 10, /aliases expand this file by more than 100000 nodes/);
  });

  it('refuses the bomb when reading plain values too', () => {
    assert.throws(() => readYamlValue(billionLaughs()), YamlInputError);
  });

  it('accepts aliases that add up to the limit, and resolves them', () => {
    // 1 + 999 nodes, repeated 100 times: 99 900 added nodes.
    const items = Array.from({ length: 999 }, (_, index) => String(index)).join(', ');
    const text = `a: &a [${items}]\nb: [${Array(100).fill('*a').join(', ')}]\n`;
    const value = readYamlValue(text) as { b: string[][] };
    assert.equal(value.b.length, 100);
    assert.equal(value.b[99]?.length, 999);
    assert.ok(100 * 1000 - 100 <= MAX_YAML_ALIAS_EXPANSION);
  });

  it('refuses nesting deeper than the limit, flow or block, without recursing into it', () => {
    const depth = MAX_YAML_DEPTH + 1;
    refuses(`${'['.repeat(depth)}${']'.repeat(depth)}\n`, 1, /nesting is deeper than 100 levels/);
    refuses(`${'- '.repeat(depth)}x\n`, 1, /nesting is deeper than 100 levels/);
    // Far beyond what the composer's recursion survives: still a clear error.
    refuses(`x: ${'['.repeat(5_000)}\n`, 1, /nesting is deeper/);
    assert.doesNotThrow(() => parseYamlInput(`${'['.repeat(MAX_YAML_DEPTH)}${']'.repeat(MAX_YAML_DEPTH)}\n`));
  });

  it('refuses an alias inside the node it names, and one without an anchor before it', () => {
    refuses('a: &x\n  - 1\n  - *x\n', 3, /alias \*x refers to a node that contains it/);
    refuses('a: *x\nb: &x 1\n', 1, /alias \*x has no anchor &x before it/);
    // A whole document that is an alias (found by the fuzz test: it reached toJS as a ReferenceError).
    refuses('*a', 1, /alias \*a has no anchor &a before it/);
    assert.throws(() => readYamlValue('\n*a\n'), YamlInputError);
  });

  it('resolves an alias to the last anchor of its name before it', () => {
    const { document, aliasTargets } = parseYamlInput('a: &x 1\nb: &x 2\nc: *x\n');
    assert.deepEqual(document.toJS(), { a: 1, b: 2, c: 2 });
    assert.deepEqual(
      [...aliasTargets.values()].map((node) => node.toJSON()),
      [2],
    );
  });

  it('reports syntax errors and duplicate keys with their line', () => {
    refuses('a: 1\nb: [x,\nc: "unterminated\n', 3, /./);
    refuses('a: 1\na: 2\n', 2, /Map keys must be unique/);
  });
});
