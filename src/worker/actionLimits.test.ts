import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Code, StatusError } from '../util/status.js';
import { actionLimitsFor, asksForLimits, parseCpu, parseProcessCount } from './actionLimits.js';

const p = (name: string, value: string) => ({ name, value });
const MAXIMA = { memoryBytes: 8 * 1024 ** 3, cpuMillicores: 4000, maxProcesses: 4096 };

test('CPU amounts are CPUs or millicores, at least 10m', () => {
  assert.equal(parseCpu('1.5'), 1500);
  assert.equal(parseCpu('2'), 2000);
  assert.equal(parseCpu('250m'), 250);
  assert.equal(parseCpu('0.01'), 10);
  for (const bad of ['', '0', '5m', '-1', '1.5m', 'one', '1 CPU', '1e3']) {
    assert.throws(() => parseCpu(bad), /invalid CPU amount/, bad);
  }
});

test('process counts are positive integers', () => {
  assert.equal(parseProcessCount('64'), 64);
  for (const bad of ['0', '-3', '1.5', 'many', ''])
    assert.throws(() => parseProcessCount(bad), /invalid process count/);
});

test('an action asking for nothing gets the maxima; what it asks for replaces them, the last repeated one winning', () => {
  assert.deepEqual(actionLimitsFor([], MAXIMA), MAXIMA);
  assert.deepEqual(
    actionLimitsFor(
      [p('memory-limit', '1GiB'), p('cpu-limit', '500m'), p('process-limit', '8'), p('memory-limit', '512MiB')],
      MAXIMA,
    ),
    { memoryBytes: 512 * 1024 ** 2, cpuMillicores: 500, maxProcesses: 8 },
  );
  assert.deepEqual(actionLimitsFor([p('OSFamily', 'linux'), p('cpu-limit', '4')], MAXIMA), {
    ...MAXIMA,
    cpuMillicores: 4000,
  });
  assert.equal(asksForLimits([p('OSFamily', 'linux')]), false);
  assert.equal(asksForLimits([p('process-limit', '3')]), true);
});

test('a value above the maximum is FAILED_PRECONDITION naming the maximum and its flag', () => {
  const refusal = (properties: Array<{ name: string; value: string }>) => {
    try {
      actionLimitsFor(properties, MAXIMA);
    } catch (error) {
      assert.ok(error instanceof StatusError);
      return error;
    }
    assert.fail('accepted');
  };
  const memory = refusal([p('memory-limit', '9GiB')]);
  assert.equal(memory.code, Code.FAILED_PRECONDITION);
  assert.match(memory.message, /memory-limit=9GiB is above this worker's maximum of 8GiB \(--action-memory-max\)/);
  assert.match(refusal([p('cpu-limit', '4.5')]).message, /maximum of 4 CPU \(--action-cpu-max\)/);
  assert.match(refusal([p('process-limit', '5000')]).message, /maximum of 4096 \(--action-processes-max\)/);
});

test('a value that is not one is INVALID_ARGUMENT', () => {
  for (const bad of [p('memory-limit', 'lots'), p('cpu-limit', 'fast'), p('process-limit', '-1')]) {
    assert.throws(
      () => actionLimitsFor([bad], MAXIMA),
      (error: unknown) =>
        error instanceof StatusError &&
        error.code === Code.INVALID_ARGUMENT &&
        error.message.startsWith(`platform property ${bad.name}:`),
    );
  }
});
