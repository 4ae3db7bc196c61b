import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backgroundContext, type Principal, type RequestContext } from '../context/requestContext.js';
import { Code, StatusError } from '../util/status.js';
import { UploadQuota } from './uploadQuota.js';

const token = (name: string): RequestContext => ({
  ...backgroundContext(),
  principal: { kind: 'token', name, scopes: new Set(['cas-write']), instances: ['*'] } satisfies Principal,
});

function refusal(run: () => void): StatusError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof StatusError);
    return error;
  }
  assert.fail('expected RESOURCE_EXHAUSTED');
}

describe('UploadQuota', () => {
  it('lets a caller upload a minute of allowance, then refuses with the time until it may go on', () => {
    let nowMs = 0;
    const quota = new UploadQuota(60_000, () => nowMs); // 1000 bytes per second
    const alice = token('alice');
    quota.charge(alice, 40_000);
    quota.charge(alice, 20_000);
    const error = refusal(() => quota.charge(alice, 1));
    assert.equal(error.code, Code.RESOURCE_EXHAUSTED);
    assert.match(error.message, /upload quota exceeded: token alice may upload 58\.6KiB per minute/);
    assert.deepEqual(error.details.quotaFailure, [
      { subject: 'token:alice', description: 'upload bytes per minute (60000)' },
    ]);
    assert.equal(error.details.retryDelayMs, 1);
    nowMs += 5;
    quota.charge(alice, 1);
  });

  it('lets a blob larger than the allowance through, then makes the caller pay the debt off', () => {
    let nowMs = 0;
    const quota = new UploadQuota(60_000, () => nowMs);
    const alice = token('alice');
    quota.charge(alice, 150_000); // 90 s of allowance in debt
    const error = refusal(() => quota.charge(alice, 1));
    assert.equal(error.details.retryDelayMs, 90_001);
    nowMs += 90_002;
    quota.charge(alice, 1);
  });

  it('keeps callers apart and never limits the server itself', () => {
    const quota = new UploadQuota(1000, () => 0);
    quota.charge(token('alice'), 5000);
    assert.throws(() => quota.charge(token('alice'), 1), StatusError);
    quota.charge(token('bob'), 5000);
    for (let i = 0; i < 10; i++) quota.charge(backgroundContext(), 1_000_000);
  });
});
