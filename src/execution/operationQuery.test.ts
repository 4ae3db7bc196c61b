import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { actionRequest } from '../../test/support/schedulerContract.js';
import { Code, StatusError } from '../util/status.js';
import { decodePageToken, encodePageToken, matchesQuery, queueOrder } from './operationQuery.js';
import type { OperationRecord } from './types.js';

const record = (overrides: Partial<OperationRecord> = {}): OperationRecord => ({
  name: 'operations/a',
  request: actionRequest(1, { clientMetadata: { toolName: 'bazel', toolInvocationId: 'inv' } }),
  stage: 'QUEUED',
  queuedAtMs: 10,
  attempts: 0,
  version: 1,
  ...overrides,
});

describe('operation listings', () => {
  it('order oldest first, then by name', () => {
    assert.ok(queueOrder({ queuedAtMs: 1, name: 'z' }, { queuedAtMs: 2, name: 'a' }) < 0);
    assert.ok(queueOrder({ queuedAtMs: 2, name: 'b' }, { queuedAtMs: 2, name: 'a' }) > 0);
    assert.equal(queueOrder({ queuedAtMs: 2, name: 'a' }, { queuedAtMs: 2, name: 'a' }), 0);
  });

  it('give back the position a page token was made from', () => {
    const position = { queuedAtMs: 1234, name: 'operations/x' };
    assert.deepEqual(decodePageToken(encodePageToken(position)), position);
    assert.equal(decodePageToken(''), undefined);
    assert.equal(decodePageToken(undefined), undefined);
  });

  it('refuse page tokens they did not issue with INVALID_ARGUMENT', () => {
    for (const token of [
      'garbage',
      Buffer.from('[1]').toString('base64url'),
      Buffer.from('["a","b"]').toString('base64url'),
    ]) {
      assert.throws(
        () => decodePageToken(token),
        (error: unknown) => error instanceof StatusError && error.code === Code.INVALID_ARGUMENT,
        token,
      );
    }
  });

  it('filter by every field given and ignore the rest', () => {
    const op = record({ stage: 'EXECUTING', workerId: 'w' });
    assert.equal(matchesQuery(op, {}), true);
    assert.equal(matchesQuery(op, { stage: 'EXECUTING', workerId: 'w', toolName: 'bazel', invocationId: 'inv' }), true);
    assert.equal(matchesQuery(op, { stage: 'QUEUED' }), false);
    assert.equal(matchesQuery(op, { workerId: 'v' }), false);
    assert.equal(matchesQuery(op, { toolName: 'bst' }), false);
    assert.equal(matchesQuery(op, { invocationId: 'other' }), false);
    assert.equal(matchesQuery(record({ request: actionRequest(1) }), { toolName: 'bazel' }), false);
  });
});
