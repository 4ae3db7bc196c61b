import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { durationFromMs, msFromDuration, msFromTimestamp, nowMs, timestampFromMs } from './time.js';

describe('Timestamp conversions', () => {
  it('splits epoch milliseconds into seconds and nanoseconds', () => {
    assert.deepEqual(timestampFromMs(1_700_000_000_123), { seconds: 1_700_000_000, nanos: 123_000_000 });
    assert.deepEqual(timestampFromMs(0), { seconds: 0, nanos: 0 });
  });

  it('keeps fractions of a millisecond down to the nanosecond', () => {
    assert.deepEqual(timestampFromMs(2_000.000_5), { seconds: 2, nanos: 500 });
  });

  it('never gives negative nanos, even before the epoch', () => {
    assert.deepEqual(timestampFromMs(-1_500), { seconds: -2, nanos: 500_000_000 });
  });

  it('never rounds nanos up to a whole second', () => {
    const timestamp = timestampFromMs(999.999_999_9);
    assert.equal(timestamp.seconds, 0);
    assert.ok(timestamp.nanos <= 999_999_999);
  });

  it('reads a Timestamp back into the milliseconds it came from', () => {
    for (const ms of [0, 1, 1_700_000_000_123, -1_500, 2_000.5]) assert.equal(msFromTimestamp(timestampFromMs(ms)), ms);
    assert.equal(msFromTimestamp({ seconds: 3, nanos: 1_500_000 }), 3_001.5);
  });

  it('reads the clock in epoch milliseconds, never going backwards between two readings', () => {
    const first = nowMs();
    const second = nowMs();
    assert.ok(second >= first);
    assert.ok(Math.abs(first - Date.now()) < 60_000);
  });
});

describe('Duration conversions', () => {
  it('splits milliseconds into seconds and nanoseconds', () => {
    assert.deepEqual(durationFromMs(90_250), { seconds: 90, nanos: 250_000_000 });
    assert.deepEqual(durationFromMs(0), { seconds: 0, nanos: 0 });
  });

  it('gives negative spans the same sign in seconds and nanos', () => {
    assert.deepEqual(durationFromMs(-1_500), { seconds: -1, nanos: -500_000_000 });
  });

  it('reads a Duration back into milliseconds, fractions included', () => {
    assert.equal(msFromDuration({ seconds: 0, nanos: 300_000_000 }), 300);
    assert.equal(msFromDuration({ seconds: 2, nanos: 1 }), 2_000.000_001);
    for (const ms of [0, 90_250, -1_500]) assert.equal(msFromDuration(durationFromMs(ms)), ms);
  });
});
