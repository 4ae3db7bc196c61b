import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExpressionError, type ExpressionValue, evaluateCondition } from './expression.js';

const values = new Map<string, ExpressionValue>([
  ['debug', false],
  ['release', true],
  ['flavour', 'chocolate'],
  ['features', ['pulse', 'wayland']],
  ['machine', 'x86_64'],
]);
const holds = (source: string) => evaluateCondition(source, values);

describe('conditions of (?) directives', () => {
  it('reads boolean options by their truth', () => {
    assert.equal(holds('release'), true);
    assert.equal(holds('debug'), false);
    assert.equal(holds('not debug'), true);
  });

  it('compares strings and booleans as Jinja does', () => {
    assert.equal(holds('flavour == "chocolate"'), true);
    assert.equal(holds("flavour != 'chocolate'"), false);
    assert.equal(holds('release == True'), true);
    assert.equal(holds('debug == true'), false);
  });

  it('tests membership in flags and in strings', () => {
    assert.equal(holds('"wayland" in features'), true);
    assert.equal(holds("'x11' not in features"), true);
    assert.equal(holds('"86" in machine'), true);
    assert.equal(holds('flavour in ["vanilla", "chocolate"]'), true);
  });

  it('combines with and, or and parentheses, not binding tighter than and', () => {
    assert.equal(holds('debug or flavour == "chocolate" and release'), true);
    assert.equal(holds('(debug or release) and not "x11" in features'), true);
    assert.equal(holds('not debug and debug'), false);
  });

  it('treats an empty flags list as false', () => {
    assert.equal(evaluateCondition('features', new Map([['features', []]])), false);
  });

  it('reports undefined names and bad syntax', () => {
    assert.throws(
      () => holds('colour == "red"'),
      (error: unknown) => {
        assert.ok(error instanceof ExpressionError);
        assert.match(error.message, /'colour' is undefined/);
        return true;
      },
    );
    assert.throws(() => holds('flavour = "chocolate"'), ExpressionError);
    assert.throws(() => holds('debug and'), /unexpected the end/);
    assert.throws(() => holds(''), /empty condition/);
    assert.throws(() => holds('"unterminated'), /unterminated string/);
  });
});
