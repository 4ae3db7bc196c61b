import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { environmentTokenSource, fileTokenSource } from './tokenSource.js';

describe('token sources', () => {
  let directory: string;
  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'granary-token-'));
  });
  after(() => rmSync(directory, { recursive: true, force: true }));

  it('reads a token file without its trailing newline, and again once it changes', () => {
    const path = join(directory, 'token');
    writeFileSync(path, 'first-token\n');
    let nowMs = 0;
    const token = fileTokenSource(path, () => nowMs);
    assert.equal(token(), 'first-token');
    writeFileSync(path, 'second-token\n');
    utimesSync(path, new Date(), new Date(Date.now() + 5_000));
    assert.equal(token(), 'first-token', 'not looked at again within a second');
    nowMs = 1_500;
    assert.equal(token(), 'second-token');
  });

  it('fails at once on a missing, empty or multi-word token file', () => {
    assert.throws(() => fileTokenSource(join(directory, 'missing')), /cannot read the token file/);
    const empty = join(directory, 'empty');
    writeFileSync(empty, '\n');
    assert.throws(() => fileTokenSource(empty), /must hold one token/);
    const words = join(directory, 'words');
    writeFileSync(words, 'two words\n');
    assert.throws(() => fileTokenSource(words), /must hold one token/);
  });

  it('reads GRANARY_TOKEN, and nothing when it is unset', () => {
    assert.equal(environmentTokenSource({ GRANARY_TOKEN: 'env-token' })?.(), 'env-token');
    assert.equal(environmentTokenSource({}), undefined);
    assert.throws(() => environmentTokenSource({ GRANARY_TOKEN: 'a b' }), /GRANARY_TOKEN must hold one token/);
  });
});
