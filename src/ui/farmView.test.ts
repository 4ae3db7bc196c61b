import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OperationRecord } from '../execution/types.js';
import { MAXIMUM_SHOWN_BYTES, parseDigestPath, statusOf, textView } from './farmView.js';

function operation(stage: OperationRecord['stage'], response?: Partial<NonNullable<OperationRecord['response']>>) {
  return {
    name: 'op',
    stage,
    queuedAtMs: 0,
    attempts: 1,
    version: 1,
    request: {} as OperationRecord['request'],
    response: response as OperationRecord['response'],
  } as OperationRecord;
}

describe('what the web UI shows of operations and blobs', () => {
  it('names the status a person filters by from the stage, the exit code, the error and the cache', () => {
    assert.equal(statusOf(operation('QUEUED')), 'queued');
    assert.equal(statusOf(operation('EXECUTING')), 'executing');
    assert.equal(
      statusOf(operation('COMPLETED', { result: { exitCode: 0 } as never, cachedResult: false })),
      'succeeded',
    );
    assert.equal(statusOf(operation('COMPLETED', { result: { exitCode: 0 } as never, cachedResult: true })), 'cached');
    assert.equal(statusOf(operation('COMPLETED', { result: { exitCode: 2 } as never, cachedResult: false })), 'failed');
    assert.equal(statusOf(operation('COMPLETED', { status: { code: 4, message: 'late', details: [] } })), 'failed');
  });

  it('shows text as text, cuts long text at a character boundary, and calls binary data binary', () => {
    assert.deepEqual(textView(Buffer.from('<b>hi</b>'), 9), {
      digest: undefined,
      sizeBytes: 9,
      text: '<b>hi</b>',
      truncated: false,
      binary: false,
    });
    assert.equal(textView(Buffer.from([0x00, 0x01]), 2).binary, true);
    assert.equal(textView(Buffer.from([0xff, 0xfe]), 2).binary, true);
    // A three-byte character cut after its first byte at the display limit.
    const long = Buffer.concat([Buffer.alloc(MAXIMUM_SHOWN_BYTES - 1, 'a'), Buffer.from('€')]);
    const view = textView(long, long.length);
    assert.equal(view.binary, false);
    assert.equal(view.truncated, true);
    assert.equal(view.text.length, MAXIMUM_SHOWN_BYTES - 1);
  });

  it('accepts HASH/SIZE digests in paths and refuses anything else with INVALID_ARGUMENT', () => {
    const hash = 'a'.repeat(64);
    assert.deepEqual(parseDigestPath(`${hash}/12`), { hash, sizeBytes: 12 });
    for (const bad of [`${hash}`, `${hash}/-1`, `${'A'.repeat(64)}/1`, `${hash.slice(1)}/1`, '../etc/passwd']) {
      assert.throws(() => parseDigestPath(bad), { code: 3 }, bad);
    }
  });
});
