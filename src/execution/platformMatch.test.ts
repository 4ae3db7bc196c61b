import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Code, StatusError } from '../util/status.js';
import { parsePlatformMatchRules, platformMatcher, satisfies } from './platformMatch.js';

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

test('resource limits need a worker that enforces them, whatever their value, and do not split queues by value', () => {
  const enforcing = [p('OSFamily', 'linux'), p('resource-limits', 'cgroup')];
  for (const name of ['memory-limit', 'cpu-limit', 'process-limit']) {
    assert.equal(satisfies(enforcing, [p(name, '1')]), true, name);
    assert.equal(satisfies([p('OSFamily', 'linux')], [p(name, '1')]), false, `${name} needs resource-limits=cgroup`);
  }
  assert.equal(platformMatcher({ 'memory-limit': 'ignore' }).satisfies([], [p('memory-limit', '1GiB')]), true);
  const matcher = platformMatcher();
  assert.equal(matcher.queueKey([p('memory-limit', '1GiB')]), 'memory-limit=1GiB');
});

test('OSFamily is compared case-insensitively, as Bazel users write it', () => {
  const worker = [p('OSFamily', 'linux'), p('ISA', 'x86-64')];
  assert.equal(satisfies(worker, [p('OSFamily', 'Linux')]), true);
  assert.equal(satisfies(worker, [p('OSFamily', 'LINUX')]), true);
  assert.equal(satisfies([p('OSFamily', 'Linux')], [p('OSFamily', 'linux')]), true, 'either side may be capitalised');
  assert.equal(satisfies(worker, [p('OSFamily', 'windows')]), false);
  assert.equal(satisfies(worker, [p('osfamily', 'linux')]), false, 'names still compare exactly');
  assert.equal(satisfies([p('pool', 'Big')], [p('pool', 'big')]), false, 'other values still compare exactly');
});

test('ISA spellings of one architecture are aliases', () => {
  for (const offered of ['x86-64', 'x86_64', 'amd64']) {
    for (const asked of ['x86-64', 'x86_64', 'amd64', 'AMD64', 'x64']) {
      assert.equal(satisfies([p('ISA', offered)], [p('ISA', asked)]), true, `${offered} offers ${asked}`);
    }
  }
  assert.equal(satisfies([p('ISA', 'aarch64')], [p('ISA', 'arm64')]), true);
  assert.equal(satisfies([p('ISA', 'aarch64')], [p('ISA', 'arm-a64')]), true);
  assert.equal(satisfies([p('ISA', 'x86-64')], [p('ISA', 'aarch64')]), false);
  assert.equal(satisfies([p('ISA', 'x86-64')], [p('ISA', 'i686')]), false);
});

test('a minimum property needs a worker offering at least that number', () => {
  const matcher = platformMatcher({ cores: 'minimum', memoryMiB: 'minimum' });
  const worker = [p('cores', '8'), p('memoryMiB', '16384')];
  assert.equal(matcher.satisfies(worker, [p('cores', '4')]), true);
  assert.equal(matcher.satisfies(worker, [p('cores', '8'), p('memoryMiB', '16384')]), true);
  assert.equal(matcher.satisfies(worker, [p('cores', '16')]), false);
  assert.equal(matcher.satisfies(worker, [p('cores', '2.5')]), true);
  assert.equal(matcher.satisfies([p('cores', 'many')], [p('cores', '1')]), false, 'a non-number offers nothing');
  assert.equal(matcher.satisfies([], [p('cores', '1')]), false, 'a worker without the property does not match');
  assert.equal(matcher.satisfies(worker, [p('cores', 'lots')]), false);
});

test('a minimum property that is not a number is refused with INVALID_ARGUMENT', () => {
  const matcher = platformMatcher({ cores: 'minimum' });
  assert.doesNotThrow(() => matcher.validate([p('cores', '4'), p('pool', 'x')]));
  assert.throws(
    () => matcher.validate([p('cores', 'four')]),
    (error: unknown) => error instanceof StatusError && error.code === Code.INVALID_ARGUMENT,
  );
  assert.doesNotThrow(() => platformMatcher().validate([p('cores', 'four')]), 'only minimum properties are numbers');
});

test('a priority property never restricts but is preferred; an ignored one plays no part', () => {
  const matcher = platformMatcher({ pool: 'priority', dockerNetwork: 'ignore' });
  const fast = [p('pool', 'fast')];
  assert.equal(matcher.satisfies([], [p('pool', 'fast'), p('dockerNetwork', 'standard')]), true);
  assert.equal(matcher.preferenceMisses(fast, [p('pool', 'fast')]), 0);
  assert.equal(matcher.preferenceMisses([], [p('pool', 'fast')]), 1);
  assert.equal(matcher.preferenceMisses([], [p('dockerNetwork', 'standard')]), 0);
  assert.equal(matcher.queueKey([p('pool', 'fast'), p('dockerNetwork', 'x')]), '(any)');
});

test('a rule for a worker hint replaces the hint', () => {
  assert.equal(platformMatcher({ unixUID: 'ignore' }).satisfies([], [p('unixUID', '1000')]), true);
  assert.equal(platformMatcher().satisfies([], [p('unixUID', '1000')]), false);
});

test('queue keys are canonical: order, case of OSFamily and ISA spelling do not matter', () => {
  const matcher = platformMatcher();
  assert.equal(
    matcher.queueKey([p('OSFamily', 'Linux'), p('ISA', 'amd64')]),
    matcher.queueKey([p('ISA', 'x86-64'), p('OSFamily', 'linux')]),
  );
  assert.notEqual(matcher.queueKey([p('pool', 'a')]), matcher.queueKey([p('pool', 'b')]));
  assert.equal(matcher.queueKey([]), '(any)');
});

test('NAME=RULE settings parse into rules, and unknown rules are refused', () => {
  assert.deepEqual(parsePlatformMatchRules(['cores=minimum', 'pool=priority']), { cores: 'minimum', pool: 'priority' });
  assert.throws(() => parsePlatformMatchRules(['cores=at-least']), /NAME=exact\|minimum\|priority\|ignore/);
  assert.throws(() => parsePlatformMatchRules(['=exact']));
});
