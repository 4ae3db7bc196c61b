import assert from 'node:assert/strict';
import { test } from 'node:test';
import { satisfies } from './platformMatch.js';

const p = (name: string, value: string) => ({ name, value });

test('every action property must be offered with the same value', () => {
  const worker = [p('OSFamily', 'linux'), p('ISA', 'x86-64'), p('pool', 'a'), p('pool', 'b')];
  assert.equal(satisfies(worker, []), true);
  assert.equal(satisfies(worker, [p('OSFamily', 'linux'), p('pool', 'b')]), true);
  assert.equal(satisfies(worker, [p('pool', 'c')]), false);
  assert.equal(satisfies(worker, [p('gpu', 'yes')]), false);
});

test("BuildStream's unixUID/unixGID need a worker offering the hermetic sandbox, whatever their value", () => {
  const action = [p('ISA', 'x86-64'), p('OSFamily', 'linux'), p('unixGID', '1000'), p('unixUID', '1000')];
  const sandboxing = [p('OSFamily', 'linux'), p('ISA', 'x86-64'), p('sandbox', 'host-tools'), p('sandbox', 'hermetic')];
  assert.equal(satisfies(sandboxing, action), true);
  assert.equal(satisfies([p('OSFamily', 'linux'), p('ISA', 'x86-64')], action), false, 'never an unsandboxed worker');
  assert.equal(satisfies(sandboxing, [...action, p('network', 'on')]), false, 'no worker gives actions the network');
});
